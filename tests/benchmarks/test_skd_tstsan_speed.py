"""Speed and memory of SKD-TSTSAN on this machine (pytest-benchmark).

Run with timings: `python -m pytest tests/benchmarks --benchmark-enable`. In the normal test
run (benchmarks disabled) each body still runs once, so the code here is always exercised.
"""

import json
import subprocess
import sys

import pytest
import torch

from mer_bench.methods import METHODS
from tests.benchmarks.training_step import step_function

BATCH = 16


@pytest.fixture
def step_parts():
    torch.manual_seed(0)
    method = METHODS.build("skd_tstsan")
    model = method.build_model(5).train().to(memory_format=method.memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.99),
                                 weight_decay=5e-4)
    inputs = torch.rand(BATCH, 38, 48, 48).contiguous(memory_format=method.memory_format)
    targets = torch.randint(0, 5, (BATCH,))
    return method, model, optimizer, inputs, targets, torch.full((5,), 0.2)


def test_training_step_batch16_cpu(benchmark, step_parts):
    method, model, optimizer, inputs, targets, weights = step_parts

    step = step_function(method, model, optimizer, inputs, targets, weights)

    benchmark.extra_info["threads"] = torch.get_num_threads()
    loss = benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    assert torch.isfinite(torch.tensor(loss))


def test_inference_batch16_cpu(benchmark, step_parts):
    _, model, _, inputs, _, _ = step_parts
    model.eval()

    def infer():
        with torch.no_grad():
            return model(inputs)["final"]

    logits = benchmark(infer)
    assert logits.shape == (BATCH, 5)


PEAK = """
import json, resource, torch
from mer_bench.methods import METHODS
peak = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
method = METHODS.build("skd_tstsan")
model = method.build_model(5).train().to(memory_format=method.memory_format)
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(16, 38, 48, 48).contiguous(memory_format=method.memory_format)
y, w = torch.randint(0, 5, (16,)), torch.full((5,), 0.2)
idle = peak()
for _ in range(3):
    loss = method.loss(model, x, y, w); opt.zero_grad(); loss.backward(); opt.step()
print(json.dumps([idle, peak()]))
"""


def test_peak_memory_of_training_steps():
    """Peak resident memory of a fresh process with the model built but no step, then after
    three training steps at batch 16 (the peak only grows: the difference is what training
    costs)."""
    done = subprocess.run([sys.executable, "-c", PEAK], capture_output=True, text=True,
                          timeout=300, check=True)
    idle, training = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"peak RSS: {training:.0f} MB training, {idle:.0f} MB built but idle")
    assert 0 < idle <= training < 4096
