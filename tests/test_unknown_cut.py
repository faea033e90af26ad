"""The embedding-length cut: items of no class we name come out `uncertain`, ours do not."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from tests.conftest import ROOT, litert_models_copy
from waste_vision.errors import UserError
from waste_vision.images import read_rgb
from waste_vision.labels import UNCERTAIN
from waste_vision.model.cascade import Cascade
from waste_vision.model.manifest import load_manifest
from waste_vision.training.fielddata import unknown_items


@pytest.fixture(scope="module")
def cascade() -> Cascade:
    return Cascade(ROOT / "models", backend="litert")


def test_the_shipped_rule_has_the_cut_chosen_on_validation(cascade):
    report = json.loads((ROOT / "models" / "reports" / "unknown_cut.json").read_text())
    assert cascade.rule.min_embedding_norm == pytest.approx(report["min_embedding_norm"])
    assert cascade.rule.min_embedding_norm > 0


def test_unknown_items_are_uncertain_more_often_and_known_photos_keep_their_labels(
    cascade, shared_datasets
):
    unknown = unknown_items(shared_datasets / "garbage12-other", None, "VALIDATION")[:40]
    without = replace(cascade.rule, min_embedding_norm=0.0)
    results = [cascade.classify(read_rgb(p)) for p in unknown]
    cut = np.mean([r.label == UNCERTAIN for r in results])
    cascade.rule = without
    try:
        plain = np.mean([cascade.classify(read_rgb(p)).label == UNCERTAIN for p in unknown])
        known = sorted((ROOT / "assets" / "samples").glob("*.jpg"))
        before = [cascade.classify(read_rgb(p)).label for p in known]
    finally:
        cascade.reset_thresholds()
    after = [cascade.classify(read_rgb(p)).label for p in known]
    assert cut >= 0.7 and cut > plain, (cut, plain)
    assert before == after  # the 12 sample photos of our classes: no label lost to the cut


def test_a_bad_cut_in_the_manifest_is_one_line(tmp_path):
    def bad_cut(raw: dict) -> None:
        raw["decision"]["min_embedding_norm"] = -1

    models = litert_models_copy(tmp_path / "models", bad_cut)
    with pytest.raises(UserError, match="min_embedding_norm must be a number >= 0"):
        load_manifest(models)
