"""SKD-TSTSAN training at batch 16: K folds one after another vs K folds at once.

Run with timings: `python -m pytest tests/benchmarks/test_fold_parallel_speed.py
--benchmark-enable` (K > 1 only then: in the normal test run each body runs once, and K = 26
would take minutes on 2 CPU cores). `run_benchmark.py bench` prints the same on any device.
"""

import pytest

from mer_bench.benchmark.tools.bench import parallel_steps, sequential_steps, synthetic_folds
from mer_bench.methods import METHODS
from mer_bench.methods.training import pick_device

STEPS = 2


@pytest.mark.parametrize("mode", ["sequential", "fold-parallel"])
@pytest.mark.parametrize("folds", [1, 4, 8, 26])
def test_skd_tstsan_fold_steps(benchmark, folds, mode):
    if benchmark.disabled and folds > 1:
        pytest.skip("timed only with --benchmark-enable")
    method, device = METHODS.build("skd_tstsan"), pick_device("auto")
    data = synthetic_folds(method, folds)
    run = sequential_steps if mode == "sequential" else parallel_steps
    benchmark.extra_info.update(folds=folds, steps=STEPS, device=str(device))
    benchmark.pedantic(run, args=(method, data, STEPS, device), rounds=2, warmup_rounds=1)
    assert benchmark.disabled or benchmark.stats.stats.mean > 0
