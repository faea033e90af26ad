"""The pipeline's one immutable configuration: frozen, replaced whole, read once per frame."""

from __future__ import annotations

import dataclasses
import json
import threading
from types import SimpleNamespace

import numpy as np
import pytest

from waste_vision.engine.annotators import DEFAULT_STYLE, OverlayStyle, readable_scale
from waste_vision.engine.frames import Frame, Mode, RegionKind
from waste_vision.engine.pipeline import FrameClassifier, Pipeline, PipelineConfig
from waste_vision.engine.regions import ZoneSpec
from waste_vision.model.cascade import (
    Cascade,
    CascadeResult,
    DecisionRule,
    StageResult,
    decide,
)


class FakeCascade:
    """Says "glass" for every crop; ``hook`` runs inside each call (mid-frame)."""

    rule = DecisionRule()  # the cascade's own rule (the config's thresholds None)

    def __init__(self, hook=None):
        self.hook = hook
        self.calls = 0
        self.rules: list[DecisionRule | None] = []  # the rule each call was given

    def classify_many(self, crops, all_stages=False, profile=True, rule=None):
        self.calls += 1
        self.rules.append(rule)
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


# -- thresholds, zones and the overlay's style are part of the one configuration -------------


class BusyScene:
    """Stands in for ``EmptyScene``: something lies across the whole frame, every frame."""

    def find(self, image):
        h, w = image.shape[:2]
        return [(0, 0, w, h)]


def test_the_config_holds_thresholds_zones_and_the_overlay_style():
    cfg = PipelineConfig()
    assert (cfg.thresholds, cfg.zones, cfg.overlay) == (None, (), DEFAULT_STYLE)
    assert OverlayStyle(min_scale=0.0, figures=True) == DEFAULT_STYLE
    zones = [ZoneSpec((0, 0, 10, 10)), ZoneSpec((5, 5, 10, 10), track=True)]
    cfg = PipelineConfig(zones=zones)  # type: ignore[arg-type]
    assert cfg.zones == tuple(zones) and isinstance(cfg.zones, tuple)  # frozen too
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.thresholds = DecisionRule()  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.overlay.figures = False  # type: ignore[misc]
    with pytest.raises(TypeError, match="zones must be ZoneSpec"):
        PipelineConfig(zones=((0, 0, 10, 10),))  # type: ignore[arg-type]
    assert readable_scale(1080, 270) == pytest.approx(0.58 * 4)  # shown at a quarter
    assert readable_scale(720, 720) == 0.0 and readable_scale(None, 300) == 0.0


def test_each_frame_is_classified_under_its_configs_thresholds():
    cascade = FakeCascade()
    classifier = FrameClassifier(cascade, reuse=False)  # type: ignore[arg-type]
    classifier(frame(0))
    strict = DecisionRule(min_confidence=0.9)
    classifier.reconfigure(thresholds=strict)
    classifier(frame(1))
    classifier.reconfigure(thresholds=None)
    classifier(frame(2))
    assert cascade.rules == [None, strict, None]  # None: the cascade's own rule


def test_a_new_rule_is_not_answered_from_results_kept_under_the_old_one():
    cascade = FakeCascade()
    classifier = FrameClassifier(cascade, reuse=True)  # type: ignore[arg-type]
    classifier(frame(0))
    classifier(Frame(1, 0.01, frame(1).image))  # unchanged, young: reused
    assert cascade.calls == 1
    classifier.reconfigure(thresholds=DecisionRule(min_confidence=0.9))
    classifier(Frame(2, 0.02, frame(2).image))
    assert cascade.calls == 2 and cascade.rules[-1] == DecisionRule(min_confidence=0.9)


def test_zones_come_from_the_config_and_keep_their_state_while_unchanged():
    classifier = FrameClassifier(  # type: ignore[arg-type]
        FakeCascade(), mode="items", scene=BusyScene(), reuse=False
    )
    a, b = ZoneSpec((0, 0, 32, 32), track=True), ZoneSpec((32, 32, 32, 32))
    classifier.reconfigure(zones=(a,))
    result = classifier(frame(0))
    assert result.mode is Mode.ZONES and [r.box for r in result.regions] == [(0, 0, 64, 64)]
    zone_a = classifier.regions.regions[0]  # it followed the item found (the whole frame)
    assert zone_a.box == (0, 0, 64, 64)
    classifier.reconfigure(zones=(a, b))
    result = classifier(frame(1))
    assert classifier.regions.regions[0] is zone_a  # unchanged: the same zone, still there
    assert [r.box for r in result.regions] == [(0, 0, 64, 64), (32, 32, 32, 32)]
    assert classifier.regions.placed == ((a, (0, 0, 64, 64)), (b, (32, 32, 32, 32)))
    classifier.reconfigure(zones=())
    result = classifier(frame(2))
    assert result.mode is Mode.ITEMS and classifier.regions.regions == []


def test_the_pipeline_thread_ends_the_item_when_zones_mode_or_epoch_change():
    """Counting from the verdicts, a change of setup ends the item being followed, on the
    pipeline thread when it takes the new configuration: the same label steady again after
    the change counts again (before, only a direct call from the GUI thread did this)."""
    classifier = FrameClassifier(  # type: ignore[arg-type]
        FakeCascade(), mode="frame", scene=BusyScene(), reuse=False
    )

    def steady(first: int) -> tuple[str, ...]:
        return classifier(frame(first)).counted + classifier(frame(first + 1)).counted

    assert steady(0) == ("glass",)
    assert steady(2) == ()  # the same item still in view: once
    classifier.reconfigure(zones=(ZoneSpec((0, 0, 32, 32)),))  # a zone drawn
    assert steady(4) == ("glass",)
    classifier.reconfigure(item_epoch=1)  # asked for (a new source, say)
    assert steady(6) == ("glass",)
    assert steady(8) == ()
    classifier.reconfigure(overlay=OverlayStyle(min_scale=2.0))  # not a new setup
    assert steady(10) == ()
    classifier.reconfigure(zones=(), mode="items")
    classifier(frame(12))
    classifier.reconfigure(mode="frame")  # whole frame again
    assert steady(13) == ("glass",)
    assert dict(classifier.counts) == {"glass": 4}


def test_heat_maps_are_made_under_the_frames_rule_with_both_stages():
    """The occluded copies are classified under the frame's thresholds (not the cascade's
    own rule) and with stage 2 run, so the map does not go flat when stage 1's cut moves."""
    calls = []

    class Recording(FakeCascade):
        stage2 = SimpleNamespace(labels=["glass"])  # the material stage's spec

        def classify_many(self, crops, all_stages=False, profile=True, rule=None):
            calls.append((len(crops), all_stages, rule))
            return super().classify_many(crops, all_stages, profile, rule)

    cascade = Recording()
    strict = DecisionRule(stage1_threshold=0.8)
    classifier = FrameClassifier(cascade, mode="frame", reuse=False)  # type: ignore[arg-type]
    classifier.reconfigure(explain=True, thresholds=strict)
    classifier(frame(0))
    classifier.reconfigure(thresholds=None)
    classifier(frame(1))
    frame_calls = [c for c in calls if c[0] == 1]
    occluded = [c for c in calls if c[0] == classifier.explainer.patches_per_frame]
    assert [c[2] for c in frame_calls] == [strict, None]
    assert occluded == [(2, True, strict), (2, True, None)]


class StyleRecorder:
    """An annotator that notes the style each frame is drawn in."""

    def __init__(self):
        self.styles: list[OverlayStyle] = []

    def annotate(self, scene, result, style=DEFAULT_STYLE):
        self.styles.append(style)
        return scene


class ListSource:
    def __init__(self, frames):
        self.frames = list(frames)

    def read(self, timeout=None):
        return self.frames.pop(0) if self.frames else None

    @property
    def finished(self):
        return not self.frames


def test_the_pipeline_takes_the_config_once_per_frame_for_classifying_and_drawing():
    """A new config handed over while a frame is classified: that frame is drawn in the
    style it was classified under; the next frame is classified and drawn under the new."""
    small = OverlayStyle(min_scale=2.0, figures=False)
    classifier: FrameClassifier

    def change_mid_frame():
        if classifier.config.overlay == DEFAULT_STYLE:
            classifier.reconfigure(overlay=small, mode="items")

    classifier = FrameClassifier(FakeCascade(hook=change_mid_frame), reuse=False)  # type: ignore[arg-type]
    recorder = StyleRecorder()
    results = []
    Pipeline(ListSource([frame(0), frame(1)]), classifier, recorder).run(results.append)
    assert [r.mode for r in results] == [Mode.FRAME, Mode.ITEMS]
    assert recorder.styles == [DEFAULT_STYLE, small]


def test_decide_keeps_the_embedding_in_the_one_result_it_makes():
    s1 = StageResult("recyclable", 0.9, (0.1, 0.9))
    s2 = StageResult("glass", 0.8, (0.8, 0.1, 0.1))
    embedding = np.array([3.0, 4.0], np.float32)  # length 5
    rule = DecisionRule(min_embedding_norm=6.0)
    short = decide(rule, s1, s2, embedding)
    assert short.embedding is embedding and short.label == "uncertain"
    assert short.score == pytest.approx(0.8)
    sure = decide(DecisionRule(min_embedding_norm=4.0), s1, s2, embedding)
    assert (sure.label, sure.embedding is embedding) == ("glass", True)
    assert decide(rule, s1, s2).label == "glass"  # no embedding: no length cut


def test_the_cascade_classifies_under_the_rule_it_is_given(models_dir):
    """``PipelineConfig.thresholds`` reaches the models: a rule given for one call decides
    that call only; the cascade's own rule is untouched."""
    from tests.conftest import ROOT
    from waste_vision.images import read_rgb

    cascade = Cascade(models_dir, backend="litert")
    photo = read_rgb(ROOT / "assets" / "samples" / "glass_trashnet_glass102.jpg")
    own = cascade.classify(photo)
    unsure = DecisionRule(min_confidence=1.0)
    (strict,) = cascade.classify_many([photo], rule=unsure)
    assert own.label == "glass" and strict.label == "uncertain"
    assert strict.score == pytest.approx(own.score)
    assert cascade.rule == cascade.model_rule
    # the shipped fused model's embedding, kept in the result decide() made
    assert own.embedding is not None and own.embedding.shape == (1280,)
    assert np.array_equal(strict.embedding, own.embedding)
