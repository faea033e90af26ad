"""Reusing a region's result while its picture is unchanged (``reuse.ResultCache``), and the
pipeline's use of it in every mode."""

from __future__ import annotations

import numpy as np
import pytest

from waste_vision.engine.frames import Frame, Mode
from waste_vision.engine.items import ItemTracker
from waste_vision.engine.pipeline import FrameClassifier, PipelineConfig
from waste_vision.engine.regions import ZoneSpec
from waste_vision.engine.reuse import ResultCache, thumbnail
from waste_vision.model.cascade import CascadeResult, DecisionRule, StageResult


class CountingCascade:
    """Stands in for ``Cascade``: counts the crops it is asked to classify."""

    def __init__(self):
        self.rule = DecisionRule()
        self.calls: list[int] = []  # crops per classify_many call
        self.rules: list[DecisionRule | None] = []  # the rule each call was given

    def classify_many(self, images, all_stages=False, profile=True, rule=None):
        self.calls.append(len(images))
        self.rules.append(rule)
        s1 = StageResult("organic", 0.9, (0.9, 0.1))
        return [CascadeResult("organic", 0.9, s1, None) for _ in images]

    @property
    def crops(self) -> int:
        return sum(self.calls)


def scene(seed: int = 0, noise: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.full((240, 320, 3), 120, np.uint8)
    image[60:180, 80:240] = (40, 160, 200)  # an item
    if noise:
        noisy = np.round(image + rng.normal(0, noise, image.shape))
        image = np.clip(noisy, 0, 255).astype(np.uint8)
    return image


def test_unchanged_content_is_reused():
    cascade, cache = CountingCascade(), ResultCache()
    first = cache.classify(cascade, 0.0, ["a"], [scene()])
    again = cache.classify(cascade, 1 / 30, ["a"], [scene(1, noise=3.0)])  # camera noise
    assert cascade.crops == 1 and again[0] is first[0]
    assert (cache.classified, cache.reused) == (1, 1)


def test_changed_content_is_classified_again():
    cascade, cache = CountingCascade(), ResultCache()
    cache.classify(cascade, 0.0, ["a"], [scene()])
    moved = scene()
    moved[60:180, 80:240] = 120
    moved[60:180, 120:280] = (40, 160, 200)  # the item slid 40 px
    cache.classify(cascade, 1 / 30, ["a"], [moved])
    assert cascade.crops == 2


def test_max_age_forces_a_refresh_on_the_frame_clock():
    cascade, cache = CountingCascade(), ResultCache(max_age_s=0.25)
    for i in range(16):  # 16 frames at 30 FPS of an unchanged picture
        cache.classify(cascade, i / 30, ["a"], [scene()])
    assert cascade.crops == 2  # at 0 s and at 8/30 s
    cache.classify(cascade, 0.0, ["a"], [scene()])  # the clock went back: a file looped
    assert cascade.crops == 3


def test_regions_due_for_age_together_are_refreshed_on_different_frames():
    cascade, cache = CountingCascade(), ResultCache(max_age_s=0.25)
    refreshed = {"a": [], "b": []}
    for i in range(40):
        results = cache.classify(cascade, i / 30, ["a", "b"], [scene(), scene()])
        for key in refreshed:
            if cache._entries[key].t == i / 30:
                refreshed[key].append(i)
    assert cascade.calls[0] == 2 and set(cascade.calls[1:]) == {1}  # never both again
    for frames in refreshed.values():  # each still refreshed within max age + one frame
        assert max(b - a for a, b in zip(frames, frames[1:], strict=False)) <= 9
    assert len(results) == 2


def test_a_new_decision_rule_or_stage_setting_is_classified_again():
    cascade, cache = CountingCascade(), ResultCache()
    cache.classify(cascade, 0.0, ["a"], [scene()])
    cascade.rule = DecisionRule(min_confidence=0.8)  # a slider moved
    cache.classify(cascade, 0.01, ["a"], [scene()])
    cache.classify(cascade, 0.02, ["a"], [scene()], all_stages=True)
    assert cascade.crops == 3
    loose, slid = DecisionRule(), DecisionRule(min_confidence=0.8)
    assert cascade.rules == [loose, slid, slid]  # each call told the rule it is under
    # the configuration's rule (PipelineConfig.thresholds) wins over the cascade's own
    strict = DecisionRule(min_confidence=0.9)
    cache.classify(cascade, 0.03, ["a"], [scene()], all_stages=True, rule=strict)
    cache.classify(cascade, 0.04, ["a"], [scene()], all_stages=True, rule=strict)
    assert cascade.crops == 4 and cascade.rules[-1] == strict  # then reused under it


def test_only_changed_regions_go_to_one_batched_call_and_gone_ones_are_forgotten():
    cascade, cache = CountingCascade(), ResultCache()
    cache.classify(cascade, 0.0, ["a", "b", "c"], [scene(), scene(), scene()])
    changed = np.zeros_like(scene())
    cache.classify(cascade, 0.03, ["a", "b", "c"], [scene(), changed, changed])
    assert cascade.calls == [3, 2]
    cache.classify(cascade, 0.06, ["a"], [scene()])  # b and c left
    cache.classify(cascade, 0.09, ["a", "b"], [scene(), changed])
    assert cascade.calls == [3, 2, 1]  # b came back: classified again


def test_thumbnail_is_small_and_smooths_noise():
    noisy = thumbnail(scene(2, noise=10.0))  # heavy camera noise
    assert noisy.shape == (16, 16, 3) and noisy.dtype == np.float32
    assert float(np.mean(np.abs(noisy - thumbnail(scene())))) < 0.5 * ResultCache().threshold


def frame(i: int, image: np.ndarray) -> Frame:
    return Frame(i, 100.0 + i / 30, image, 30.0, i / 30)


@pytest.mark.parametrize(
    "mode, regions", [("frame", []), ("zones", [(0, 0, 160, 240), (160, 0, 160, 240)])]
)
def test_pipeline_reuses_in_frame_and_zone_modes_and_can_classify_every_frame(mode, regions):
    for reuse, expected in ((True, 2), (False, 16)):
        cascade = CountingCascade()
        zones = tuple(ZoneSpec(box) for box in regions)
        # zones are classified only where something differs from the empty table (issue 22):
        # here something lies across both zones
        busy = FixedScene([(0, 0, 320, 240)])
        config = PipelineConfig(Mode.FRAME, reuse=reuse, zones=zones)
        classifier = FrameClassifier(cascade, scene=busy, config=config)
        for i in range(16):
            result = classifier(frame(i, scene()))
        per_frame = max(len(regions), 1)
        assert cascade.crops == expected * per_frame
        assert result.mode == mode and len(result.regions) == per_frame


class FixedScene:
    """Stands in for ``EmptyScene``: the same item box(es) every frame."""

    def __init__(self, boxes=((80, 60, 160, 120),)):
        self.boxes = list(boxes)

    def find(self, image):
        return list(self.boxes)


def test_pipeline_keeps_results_per_item_and_still_counts_it():
    cascade = CountingCascade()
    classifier = FrameClassifier(
        cascade, mode="items", scene=FixedScene(), tracker=ItemTracker(steady_s=0.5)
    )
    counted = []
    for i in range(30):  # one second of a still item
        counted += classifier(frame(i, scene())).counted
    assert cascade.crops == 4  # refreshed every 0.25 s, not 30 times
    assert counted == ["organic"]
    assert classifier.summary()["tally"] == {"organic": 1}
