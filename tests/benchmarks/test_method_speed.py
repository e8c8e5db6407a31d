"""Training-step time of every registered torch method at its own batch size, on inputs of
its real view shapes (made by the preprocessing from one clip), and LBP-TOP per clip.

Run with timings: `python -m pytest tests/benchmarks/test_method_speed.py --benchmark-enable`.
The Table 5 variants of SKD-TSTSAN are timed in test_skd_tstsan_speed.py.
"""

import numpy as np
import pytest
import torch

from mer_bench.datasets.preprocess import PreprocessSettings, make_bundle, read_frames
from mer_bench.datasets.views import build_view
from mer_bench.methods import METHODS
from mer_bench.methods.base import Split
from mer_bench.methods.lbp_top import lbp_top
from mer_bench.methods.training import TorchMethod
from tests.benchmarks.training_step import step_function

TORCH_METHODS = [n for n in METHODS.names()
                 if not n.startswith("skd_tstsan.") and isinstance(METHODS.build(n), TorchMethod)]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from tests.conftest import casme_clip, face_frame, write_clip

    root = tmp_path_factory.mktemp("clip")
    write_clip(root, "sub01", "EP01_01", {n: face_frame(shift=[0, 1, 2, 1, 0][n - 1])
                                          for n in range(1, 6)})
    clip = casme_clip(root, "sub01", "EP01_01")
    settings = PreprocessSettings()
    return make_bundle(clip, read_frames(clip, settings), settings)


@pytest.mark.parametrize("name", TORCH_METHODS)
def test_training_step_cpu(benchmark, name, bundle):
    method = METHODS.build(name)
    # its own batch when timed; a batch of 2 when only checked (--benchmark-disable, the
    # default): HTNet.release's check took 5.9 s instead of 12.4 s here
    batch = method.recipe.batch_size if benchmark.enabled else 2
    views = {v: np.repeat(build_view(v, [bundle]), batch, axis=0) for v in method.views}
    inputs = method.inputs(Split(views, None, ("s",) * batch, tuple(map(str, range(batch)))))
    inputs = (inputs + 0.01 * torch.randn_like(inputs)).contiguous(
        memory_format=method.memory_format)
    torch.manual_seed(0)
    model = method.build_model(5).train().to(memory_format=method.memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=method.recipe.lr, fused=True)
    targets, weights = torch.arange(batch) % 5, torch.full((5,), 0.2)

    step = step_function(method, model, optimizer, inputs, targets, weights)

    benchmark.extra_info.update(
        batch=batch, threads=torch.get_num_threads(),
        parameters=sum(p.numel() for p in model.parameters() if p.requires_grad))
    loss = benchmark.pedantic(step, rounds=5, warmup_rounds=1)
    assert np.isfinite(loss)


def test_lbp_top_features_per_clip(benchmark, bundle):
    sequence = build_view("frame_sequence", [bundle])[0]
    features = benchmark(lbp_top, sequence)
    assert features.shape == (5 * 5 * 3 * 59,) and np.isclose(features.sum(), 75.0)
