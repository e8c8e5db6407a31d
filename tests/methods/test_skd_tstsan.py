"""SKD-TSTSAN against the facts of its paper (arXiv 2406.17538) and its authors' release, measured."""

import math

import numpy as np
import pytest
import torch

from mer_bench.methods import METHODS
from mer_bench.methods.layers import EnhancedECA, Magnifier, eca_kernel_size, temporal_shift
from mer_bench.methods.skd_tstsan import SKDTSTSAN, DistillationLoss, Switches, focal_loss

TABLE5 = ["skd_tstsan.base", "skd_tstsan.mag", "skd_tstsan.eca", "skd_tstsan.tsm",
          "skd_tstsan.mag_eca", "skd_tstsan.mag_tsm", "skd_tstsan.mag_eca_tsm", "skd_tstsan"]


def trainable(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def test_parameter_counts_match_the_release():
    five = SKDTSTSAN(5)
    assert trainable(five) == 2_946_214
    assert trainable(SKDTSTSAN(3)) == 2_943_904
    inference = sum(p.numel() for name, p in five.named_parameters()
                    if not name.startswith("auxiliary"))
    assert inference == 1_610_632
    assert trainable(five.magnifiers) == 566_320
    encoders = {k: trainable(m.encoder) for k, m in five.magnifiers.items()}
    assert encoders == {"L": 118_528, "S": 106_768, "T": 107_552}
    assert {trainable(m.manipulator) for m in five.magnifiers.values()} == {77_824}


def test_eca_kernel_sizes_and_count():
    assert eca_kernel_size(64) == 3 and eca_kernel_size(128) == 5
    ecas = [m for m in SKDTSTSAN(5).modules() if isinstance(m, EnhancedECA)]
    assert len(ecas) == 9 and sum(trainable(m) for m in ecas) == 39


def test_all_six_outputs_have_their_shapes():
    model = SKDTSTSAN(5).train()
    logits, features = model.forward_with_features(torch.rand(4, 38, 48, 48))
    assert {k: tuple(v.shape) for k, v in logits.items()} == {
        "final": (4, 5), "ac1": (4, 5), "ac2": (4, 5)}
    assert {k: tuple(v.shape) for k, v in features.items()} == {
        "final": (4, 384), "ac1": (4, 384), "ac2": (4, 384)}
    assert set(model.eval()(torch.rand(2, 38, 48, 48))) == {"final", "ac1", "ac2"}


def test_zero_onset_shortcut_equals_encoding_zeros():
    torch.manual_seed(0)
    magnifier = Magnifier(2).eval()
    flows = torch.randn(6, 2, 48, 48)
    with torch.no_grad():
        shortcut = magnifier(None, flows)
        encoded_zero = magnifier.encoder(torch.zeros_like(flows))
        explicit = magnifier.manipulator(encoded_zero, magnifier.encoder(flows), magnifier.alpha)
    assert torch.count_nonzero(encoded_zero) == 0
    assert torch.allclose(shortcut, explicit, atol=1e-6)


def test_temporal_shift_moves_exactly_the_stated_channels():
    batch, channels = 3, 16
    x = torch.arange(batch * 2 * channels, dtype=torch.float32).view(batch * 2, channels, 1, 1)
    x = x.expand(-1, -1, 2, 2).contiguous()
    out = temporal_shift(x).view(batch, 2, channels, 2, 2)
    seg = x.view(batch, 2, channels, 2, 2)
    fold = channels // 8
    assert torch.equal(out[:, 0, :fold], seg[:, 1, :fold])  # segment 0 takes segment 1's
    assert torch.count_nonzero(out[:, 1, :fold]) == 0
    assert torch.equal(out[:, 1, fold:2 * fold], seg[:, 0, fold:2 * fold])
    assert torch.count_nonzero(out[:, 0, fold:2 * fold]) == 0
    assert torch.equal(out[:, :, 2 * fold:], seg[:, :, 2 * fold:])


def expected_parameters(switches: Switches, classes: int = 5) -> int:
    """The parameter count as it follows from the switches, from the reference's parts."""
    raw = {"L": 16, "S": 1, "T": 2}

    def conv(c_in, c_out, k):
        return k * k * c_in * c_out + c_out + 2 * c_out  # conv with bias, batch norm

    backbone = sum(conv(32 if switches.mag else raw[k], 64, 5) for k in raw) + 3 * (
        2 * conv(64, 64, 3) + conv(64, 128, 3) + conv(128, 128, 3))
    head = 384 * classes + classes
    total = backbone + head + (566_320 if switches.mag else 0) + (19 if switches.eca else 0)
    if switches.skd:
        total += 2 * (3 * (conv(64, 128, 3) + conv(128, 128, 3)) + head)
        total += 20 if switches.eca else 0
    return total


@pytest.mark.parametrize("name", TABLE5)
def test_each_table5_variant_counts_what_its_switches_say(name):
    method = METHODS.build(name)
    assert trainable(method.build_model(5)) == expected_parameters(method.switches)


def test_the_full_model_formula_agrees_with_the_release():
    assert expected_parameters(Switches()) == 2_946_214


def direct_loss(logits, features, targets, weights, l1=0.1, l2=1e-6, t=3.0, gamma=2.0):
    """The loss written out sample by sample in float64, from the formula."""
    def focal(z):
        total, norm = 0.0, 0.0
        for row, y in zip(z, targets):
            p = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
            total += -weights[y] * (1 - p[y]) ** gamma * math.log(p[y])
            norm += weights[y]
        return total / norm

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    loss = focal(logits["final"])
    teacher = softmax(logits["final"] / t)
    for head in ("ac1", "ac2"):
        student = softmax(logits[head] / t)
        kl = (teacher * (np.log(teacher) - np.log(student))).sum() / len(targets)
        l2_term = ((features[head] - features["final"]) ** 2).sum()
        loss += (1 - l1) * focal(logits[head]) + l1 * t * t * kl + l2 * l2_term
    return loss


def test_loss_on_a_fixed_batch_equals_the_formula():
    rng = np.random.default_rng(0)
    logits = {h: rng.normal(size=(8, 5)) * 3 for h in ("final", "ac1", "ac2")}
    features = {h: np.abs(rng.normal(size=(8, 384))) for h in ("final", "ac1", "ac2")}
    targets = rng.integers(0, 5, 8)
    weights = rng.random(5)
    weights /= weights.sum()
    def as_torch(values: dict) -> dict:
        return {k: torch.tensor(v, dtype=torch.float64) for k, v in values.items()}

    value = DistillationLoss()(as_torch(logits), as_torch(features), torch.tensor(targets),
                               torch.tensor(weights))
    assert value.item() == pytest.approx(direct_loss(logits, features, targets, weights), rel=1e-9)


def test_teachers_are_detached_and_focal_loss_with_gamma_zero_is_weighted_ce():
    torch.manual_seed(0)
    final = torch.randn(6, 3, requires_grad=True)
    ac = torch.randn(6, 3, requires_grad=True)
    feats = {h: torch.rand(6, 384, requires_grad=True) for h in ("final", "ac1")}
    targets = torch.tensor([0, 1, 2, 0, 1, 2])
    weights = torch.tensor([0.5, 0.3, 0.2])
    loss = DistillationLoss(l1=1.0)({"final": final, "ac1": ac}, feats, targets, weights)
    loss.backward()
    # With l1 = 1 the final head gets gradient only from its own focal loss, not from KL.
    only_focal = torch.autograd.grad(focal_loss(final, targets, weights), final)[0]
    assert torch.allclose(final.grad, only_focal, atol=1e-6)
    ce = torch.nn.functional.cross_entropy(final, targets, weight=weights)
    assert focal_loss(final, targets, weights, gamma=0.0).item() == pytest.approx(ce.item())
