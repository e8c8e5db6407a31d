"""LBP-TOP + linear SVM: the hand-crafted baseline of MEGC 2019 (Zhao and Pietikainen's
local binary patterns on three orthogonal planes, "Dynamic texture recognition using local
binary patterns with an application to facial expressions", TPAMI 29, 2007; the MEGC 2019
challenge's reference point, See et al., FG 2019).

Each clip's grey face sequence (view `frame_sequence`) is cut into a `grid` x `grid` block
grid; in every block, uniform LBP codes (P = 8 neighbours, radius 1, scikit-image's
"nri_uniform": 59 bins) of the XY, XT and YT planes are histogrammed, each histogram
normalised to sum 1; the concatenation (grid^2 x 3 x 59 values) feeds scikit-learn's
LinearSVC. Logits are the SVM's decision values.

Departures and notes:
- With the default preprocessing the sequence is the three key frames (onset, apex, offset),
  so XT / YT codes exist at the apex only; prepare with `--domains D` for D + 1 frames
  resampled by the temporal interpolation model (MEGC 2019's baseline used TIM to 10 frames).
- The radius is 1 in time as in space (scikit-image's neighbourhood is circular).
- No epochs or iterations: `budget` and the selection rule have nothing to act on here.
"""

from __future__ import annotations

import hashlib

import numpy as np

from mer_bench.methods.base import FitContext, Method, Split

BINS = 59  # non-rotation-invariant uniform patterns of 8 neighbours
# Features by (sequence digest, grid): every LOSO fold of a run reads the same clips, so a
# clip's features are computed once per process, not once per fold.
_FEATURES: dict[tuple[str, int], np.ndarray] = {}


def _codes(plane: np.ndarray) -> np.ndarray:
    from skimage.feature import local_binary_pattern

    return local_binary_pattern(plane, 8, 1, method="nri_uniform")[1:-1, 1:-1]


def _block_histograms(codes: np.ndarray, grid: int) -> np.ndarray:
    """codes (..., H, W) -> (grid * grid, BINS) normalised histograms over H x W blocks."""
    rows = np.array_split(np.arange(codes.shape[-2]), grid)
    cols = np.array_split(np.arange(codes.shape[-1]), grid)
    histograms = []
    for r in rows:
        for c in cols:
            block = codes[..., r[0]:r[-1] + 1, c[0]:c[-1] + 1]
            counts = np.bincount(block.astype(np.int64).ravel(), minlength=BINS)[:BINS]
            histograms.append(counts / max(1, counts.sum()))
    return np.stack(histograms)


def lbp_top(sequence: np.ndarray, grid: int = 5) -> np.ndarray:
    """LBP-TOP features of one (T, H, W) grey sequence, T >= 3."""
    sequence = np.clip(np.rint(sequence), 0, 255).astype(np.uint8)  # LBP on integer grey levels
    t, h, w = sequence.shape
    if t < 3:
        raise ValueError(f"LBP-TOP needs at least 3 frames, got {t}")
    xy = np.stack([_codes(frame) for frame in sequence[1:-1]])  # (T-2, H-2, W-2)
    xt = np.stack([_codes(sequence[:, y, :]) for y in range(1, h - 1)])  # (H-2, T-2, W-2)
    yt = np.stack([_codes(sequence[:, :, x]) for x in range(1, w - 1)])  # (W-2, T-2, H-2)
    planes = [xy, xt.transpose(1, 0, 2), yt.transpose(1, 2, 0)]  # all (T-2, H-2, W-2)
    return np.concatenate([_block_histograms(p, grid) for p in planes], axis=1).ravel()


class LBPTOPSVM(Method):
    views = ("frame_sequence",)
    paper_name = "LBP-TOP + SVM"

    def __init__(self, grid: int = 5, C: float = 1.0):
        self.grid, self.C = grid, C

    def features(self, split: Split) -> np.ndarray:
        rows = []
        for sequence in split.views["frame_sequence"]:
            key = (hashlib.sha256(np.ascontiguousarray(sequence).tobytes()).hexdigest(), self.grid)
            if key not in _FEATURES:
                _FEATURES[key] = lbp_top(sequence, self.grid)
            rows.append(_FEATURES[key])
        return np.stack(rows)

    def fit_predict(self, train: Split, test: Split, context: FitContext) -> dict[str, np.ndarray]:
        from sklearn.svm import LinearSVC

        svm = LinearSVC(C=self.C, random_state=context.seed, max_iter=10_000)
        svm.fit(self.features(train), train.labels)
        scores = svm.decision_function(self.features(test))
        if scores.ndim == 1:  # two classes seen: one score for classes_[1]
            scores = np.stack([-scores, scores], axis=1)
        # classes absent from the fold's training labels rank below every seen one
        logits = np.full((len(test), context.num_classes), scores.min() - 1.0)
        logits[:, svm.classes_] = scores
        return {"final": logits}
