"""One training step of a method (loss, backward, optimiser step) as a benchmark body."""


def step_function(method, model, optimizer, inputs, targets, weights):
    def step() -> float:
        loss = method.loss(model, inputs, targets, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step
