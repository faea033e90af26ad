"""Temperature scaling and threshold choice, fitted on the validation split only."""

from __future__ import annotations

import numpy as np


def _nll(logits: np.ndarray, y: np.ndarray, t: float) -> float:
    z = logits / t
    if z.shape[-1] == 1:
        z = z[:, 0]
        # log(1 + e^-|z|) form keeps the binary cross-entropy stable
        return float(np.mean(np.logaddexp(0, z) - y * z))
    z = z - z.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return float(-np.mean(logp[np.arange(len(y)), y]))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising validation NLL of softmax/sigmoid(logits / T)."""
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 400))
    losses = [_nll(logits, y, t) for t in grid]
    return float(grid[int(np.argmin(losses))])


def roc_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score, highest threshold first."""
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    distinct = np.r_[np.where(np.diff(p))[0], len(p) - 1]
    tps = np.cumsum(y)[distinct]
    fps = (1 + distinct) - tps
    tpr = np.r_[0, tps / max(y.sum(), 1)]
    fpr = np.r_[0, fps / max((1 - y).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, p[distinct]]


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.trapezoid(tpr, fpr))


def roc_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Youden's J: the threshold on the ROC curve farthest above the diagonal."""
    fpr, tpr, thresholds = roc_curve(y, p)
    best = int(np.argmax(tpr[1:] - fpr[1:])) + 1
    return float(thresholds[best])


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15
) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size."""
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = idx == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)
