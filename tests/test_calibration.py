"""Temperature scaling, ROC and calibration error on synthetic scores with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from waste_vision.training.calibration import (
    expected_calibration_error,
    fit_temperature,
    roc_auc,
    roc_threshold,
)


def test_temperature_recovers_overconfidence():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(4000, 3))
    p = np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    t = fit_temperature(true_logits * 3.0, y)  # a model three times too confident
    assert 2.6 < t < 3.4


def test_roc_auc_and_threshold():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    assert abs(roc_auc(y, p) - 15 / 16) < 1e-9
    t = roc_threshold(y, p)
    # J = TPR - FPR is 3/4 at 0.7 (3 of 4 positives, no negative) and at 0.4 (all positives,
    # the negative at 0.6): the first, higher, one is taken; either gets 7 of 8 right
    assert t == 0.7 and np.mean((p >= t) == y) == 7 / 8
    assert roc_auc(y, 1 - p) == pytest.approx(1 / 16)  # every pair's order reversed


def test_ece_zero_when_calibrated_and_large_when_not():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.5, 1.0, 20000)
    correct = rng.uniform(size=conf.size) < conf
    assert expected_calibration_error(conf, correct) < 0.02
    # one bin, 99% sure and right half the time
    assert expected_calibration_error(
        np.full(1000, 0.99), np.arange(1000) % 2 == 0
    ) == pytest.approx(0.99 - 0.5)
