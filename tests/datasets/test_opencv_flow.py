"""The OpenCV installed (whatever `>=4.8,<5.1` resolved to) has the contrib TV-L1 and gives the
flow it gave when tests/golden/tvl1.json was written, on a fixed pair of frames: a new OpenCV
that changes the flows changes every bundle, and must be seen, not slip in."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from mer_bench.datasets.flow import tvl1_flow
from tests.conftest import face_frame

GOLDEN = Path(__file__).parents[1] / "golden" / "tvl1.json"


def grey(shift: float) -> np.ndarray:
    face = cv2.cvtColor(face_frame(shift), cv2.COLOR_BGR2GRAY)
    return cv2.resize(face, (64, 64), interpolation=cv2.INTER_AREA)


def test_tvl1_on_a_fixed_pair_gives_the_stored_numbers():
    assert hasattr(cv2, "optflow"), f"OpenCV {cv2.__version__} lacks the contrib TV-L1"
    flow = tvl1_flow(grey(0.0), grey(3.0))
    stored = json.loads(GOLDEN.read_text())
    measured = {"u_mean": flow[..., 0].mean(), "v_mean": flow[..., 1].mean(),
                "v_min": flow[..., 1].min(), "abs_sum": np.abs(flow).sum(),
                "v_at_48_32": flow[48, 32, 1]}
    for name, value in measured.items():
        assert float(value) == pytest.approx(stored[name], rel=1e-4, abs=1e-5), (
            f"{name}: OpenCV {cv2.__version__} gives {float(value)}, OpenCV "
            f"{stored['opencv']} gave {stored[name]}")
    # and it is a flow: the lower face moved up (v < 0), the upper face stayed
    assert flow[48:, :, 1].mean() < -0.3 < flow[:16, :, 1].mean()
