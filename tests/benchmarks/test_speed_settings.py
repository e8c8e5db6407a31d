"""One SKD-TSTSAN fold's training steps at batch 16 under each speed setting (precision,
layout, torch.compile).

Run with timings: `python -m pytest tests/benchmarks/test_speed_settings.py --benchmark-enable`
(the compile settings only then: compiling takes minutes on 2 CPU cores).
`run_benchmark.py bench --speed ...` prints the same on any device.
"""

import pytest

from mer_bench.benchmark.tools.bench import SPEED_SETTINGS, models_for, synthetic_folds
from mer_bench.methods import METHODS
from mer_bench.methods.training import pick_device

STEPS = 2


@pytest.mark.parametrize("setting", list(SPEED_SETTINGS))
def test_skd_tstsan_step_by_speed_setting(benchmark, setting):
    if benchmark.disabled and SPEED_SETTINGS[setting].compile:
        pytest.skip("compiled only with --benchmark-enable")
    method, device = METHODS.build("skd_tstsan"), pick_device("auto")
    if benchmark.disabled:  # untimed: one small step shows the setting trains
        method = method.with_recipe({"batch_size": 4})
    method.configure(SPEED_SETTINGS[setting])
    (fold,) = synthetic_folds(method, 1)
    (model,) = models_for(method, [fold], device)
    start = {k: v.clone() for k, v in model.state_dict().items()}

    count = 1 if benchmark.disabled else STEPS

    def steps():
        method.fit(model, fold.inputs, fold.labels, 5, count, fold.seed, device)

    benchmark.extra_info.update(setting=setting, steps=count, device=str(device))
    benchmark.pedantic(steps, rounds=3, warmup_rounds=1)
    assert any(not v.equal(start[k]) for k, v in model.state_dict().items())  # it trained
