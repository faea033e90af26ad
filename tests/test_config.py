"""The pipeline's one immutable configuration: frozen, replaced whole, read once per frame."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest

from waste_vision.engine.frames import Frame, Mode, RegionKind
from waste_vision.engine.pipeline import FrameClassifier, PipelineConfig
from waste_vision.model.cascade import CascadeResult, StageResult


class FakeCascade:
    """Says "glass" for every crop; ``hook`` runs inside each call (mid-frame)."""

    rule = None  # what the results kept for reuse were decided under

    def __init__(self, hook=None):
        self.hook = hook
        self.calls = 0

    def classify_many(self, crops, all_stages=False):
        self.calls += 1
        if self.hook is not None:
            self.hook()
        stage = StageResult("recyclable", 0.9, ())
        return [CascadeResult("glass", 0.9, stage, None) for _ in crops]


def frame(i: int = 0) -> Frame:
    return Frame(i, float(i), np.full((64, 64, 3), 128, np.uint8))


def test_config_is_frozen_and_checks_its_mode():
    cfg = PipelineConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.mode = Mode.ITEMS  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.explain = True  # type: ignore[misc]
    assert PipelineConfig(mode="items").mode is Mode.ITEMS  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mode must be one of"):
        PipelineConfig(mode="zones")  # type: ignore[arg-type]


def test_modes_are_the_old_strings():
    assert Mode.ITEMS == "items" and RegionKind.ZONE == "zone"
    assert json.dumps({"mode": Mode.ZONES, "kind": RegionKind.ITEM}) == (
        '{"mode": "zones", "kind": "item"}'
    )
    assert f"{Mode.FRAME}" == "frame" and str(RegionKind.FRAME) == "frame"


def test_reconfigure_replaces_the_object_in_one_assignment():
    classifier = FrameClassifier(FakeCascade(), mode="frame")  # type: ignore[arg-type]
    before = classifier.config
    after = classifier.reconfigure(mode="items", explain=True)
    assert classifier.config is after and after is not before
    assert (before.mode, before.explain) == (Mode.FRAME, False)  # the old one is untouched
    assert (after.mode, after.explain, after.reuse) == (Mode.ITEMS, True, before.reuse)
    # the setters the window uses are thin wrappers doing the same replacement
    classifier.mode = "frame"
    assert classifier.config is not after and classifier.config.mode is Mode.FRAME
    assert classifier.explain is True
    classifier.explain = False
    assert classifier.config == PipelineConfig(Mode.FRAME, reuse=True, explain=False)
    with pytest.raises(ValueError, match="mode must be one of"):
        classifier.mode = "bogus"
    assert classifier.config.mode is Mode.FRAME  # a refused change changes nothing


def test_a_frame_uses_one_config_throughout():
    """Another thread replaces the config while a frame is being classified: that frame is
    classified wholly with the old config, the next one wholly with the new."""
    changed = threading.Event()
    classifier: FrameClassifier

    def change_from_another_thread():
        if changed.is_set():
            return
        t = threading.Thread(
            target=lambda: classifier.reconfigure(mode="items", explain=True, reuse=False)
        )
        t.start()
        t.join()
        changed.set()

    cascade = FakeCascade(hook=change_from_another_thread)
    classifier = FrameClassifier(cascade, mode="frame", reuse=True)  # type: ignore[arg-type]
    result = classifier(frame(0))
    assert changed.is_set() and classifier.config.mode is Mode.ITEMS
    # the old config wholly: the whole frame, no heat map, the result kept for reuse
    assert result.mode is Mode.FRAME and [r.kind for r in result.regions] == [RegionKind.FRAME]
    assert all(r.heat is None for r in result.regions)
    assert cascade.calls == 1  # no explainer call for this frame
    assert len(classifier.cache._entries) == 1
    # the next frame: the new config wholly (items mode: learning the empty table first)
    result = classifier(frame(1))
    assert result.mode is Mode.ITEMS and result.learning and not result.regions


def test_counts_have_one_source_of_truth():
    classifier = FrameClassifier(FakeCascade(), mode="frame", reuse=False)  # type: ignore[arg-type]
    for i in range(20):
        classifier(Frame(i, i / 10, np.full((64, 64, 3), 128, np.uint8)))
    assert classifier.counts is classifier.tally.counts is classifier.verdicts.counts
    assert dict(classifier.counts) == {"glass": 1}
    assert classifier.summary()["tally"] == {"glass": 1}
    assert classifier.tracker.counted_total == 0  # no items in frame mode
