"""The overlay draws where it says, in the class colours, at any frame size, without crashing."""

from __future__ import annotations

import numpy as np
import pytest

from waste_vision.engine.annotators import (
    CLASS_COLOURS,
    BoxAnnotator,
    LabelAnnotator,
    Overlay,
    OverlayStyle,
    StatsAnnotator,
    scale_for,
)
from waste_vision.engine.frames import Frame, FrameResult, RegionResult
from waste_vision.model.cascade import UNCERTAIN, CascadeResult, StageResult

GREY = 90


def glass(box, label="glass", score=0.93) -> RegionResult:
    s1 = StageResult("recyclable", 0.97, (0.03, 0.97))
    s2 = StageResult("glass", 0.95, (0.01, 0.95, 0.02, 0.01, 0.01))
    return RegionResult(box, CascadeResult(label, score, s1, s2))


def result(shape, regions) -> FrameResult:
    return FrameResult(
        Frame(0, 0.0, np.full(shape, GREY, np.uint8)),
        regions,
        latency_ms=42.0,
        capture_fps=30.0,
        classify_fps=12.5,
    )


def mask_of(shape, *rects) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    for x, y, w, h in rects:
        mask[max(y, 0) : y + h, max(x, 0) : x + w] = True
    return mask


def test_draws_only_in_box_label_and_stats_areas():
    shape = (480, 640, 3)
    region = glass((200, 180, 240, 200))
    res = result(shape, [region])
    scene = Overlay.default().annotate(res.frame.image.copy(), res)
    changed = np.any(scene != res.frame.image, axis=2)
    label = LabelAnnotator().rect(shape, region)
    allowed = mask_of(shape, region.box, label, StatsAnnotator().rect(shape, res))
    assert not np.any(changed & ~allowed), "drew outside the box, label and stats areas"
    x, y, w, h = region.box
    t = scale_for(shape).line
    assert changed[y + h // 2, x] and changed[y, x + w // 2]  # outline drawn
    assert not changed[
        y + t + 5 : y + h - t - 5, x + t + 5 : x + w - t - 5
    ].any()  # inside stays clear
    assert np.all(scene[y + h // 2, x] == CLASS_COLOURS["glass"])
    lx, ly, lw, lh = label
    assert ly + lh <= y  # the tab sits above the region when there is room
    assert np.all(scene[ly + 1, lx + 1] == CLASS_COLOURS["glass"])  # the tab's fill
    assert changed[ly : ly + lh, lx : lx + lw].mean() > 0.9


@pytest.mark.parametrize("label", ["organic", "metal", "plastic", UNCERTAIN])
def test_class_colour_appears(label):
    res = result((240, 320, 3), [glass((40, 60, 120, 120), label=label)])
    scene = BoxAnnotator().annotate(res.frame.image.copy(), res)
    assert np.all(scene == CLASS_COLOURS[label], axis=2).sum() > 100


def test_colours_are_distinct_and_cover_every_class():
    for label in ("organic", "cardboard", "glass", "metal", "paper", "plastic", UNCERTAIN):
        assert label in CLASS_COLOURS
    assert len(set(CLASS_COLOURS.values())) == len(CLASS_COLOURS)


@pytest.mark.parametrize(
    "box",
    [
        (560, 440, 80, 40),
        (600, 0, 40, 470),
        (0, 0, 640, 480),
        (620, 470, 200, 200),
        (-50, -50, 100, 100),
    ],
)
def test_label_stays_inside_the_frame_at_the_edges(box):
    shape = (480, 640, 3)
    region = glass(box)
    x, y, w, h = LabelAnnotator().rect(shape, region)
    assert x >= 0 and y >= 0 and x + w <= shape[1] and y + h <= shape[0]
    res = result(shape, [region])
    scene = LabelAnnotator().annotate(res.frame.image.copy(), res)
    assert np.all(scene[y + 1, x + w - 2] == CLASS_COLOURS["glass"])  # drawn where reported


@pytest.mark.parametrize(
    "shape",
    [
        (1, 1, 3),
        (17, 31, 3),
        (31, 17, 3),
        (480, 640, 3),
        (2160, 3840, 3),
        (40, 2000, 3),
        (2000, 40, 3),
    ],
)
def test_no_crash_at_any_size_or_box(shape):
    h, w = shape[:2]
    regions = [
        glass((0, 0, w, h)),
        glass((w // 2, h // 2, w, h)),
        glass((-10, -10, 5, 5)),
        glass((w + 5, h + 5, 10, 10)),
        glass((-w, 0, 3 * w, h)),
        glass((0, 0, 0, 0), label="", score=0.0),
        RegionResult((1, 1, w, h), CascadeResult(UNCERTAIN, 0.3, StageResult("", 0.3, ()), None)),
    ]
    for regs in ([], regions):
        res = result(shape, regs)
        scene = res.frame.image.copy()
        assert Overlay.default().annotate(scene, res) is scene  # in place
        assert scene.shape == shape and scene.dtype == np.uint8
        assert (scene != GREY).any()  # the stats at least, clipped to the frame


def test_text_grows_with_the_frame():
    sizes = [
        scale_for(s) for s in [(480, 640, 3), (720, 1280, 3), (1080, 1920, 3), (2160, 3840, 3)]
    ]
    scales = [s.font_scale for s in sizes]
    assert scales == sorted(scales) and scales[-1] > 4 * scales[0]
    assert sizes[-1].thickness > sizes[0].thickness and sizes[-1].pad > sizes[0].pad
    assert scale_for((1080, 1920, 3)) == scale_for((1920, 1080, 3))  # shorter side decides


@pytest.mark.parametrize("shape", [(480, 640, 3), (720, 1280, 3), (240, 320, 3)])
def test_labels_of_close_regions_never_hide_each_other(shape):
    """Four items side by side and stacked: every tab is drawn, and no two tabs overlap."""
    h, w = shape[:2]
    boxes = [
        (w // 10, h // 5, w // 4, h // 4),
        (w // 10 + 8, h // 5 + 6, w // 4, h // 4),
        (w // 2, h // 5, w // 4, h // 4),
        (w // 10, h // 2, w // 4, h // 4),
    ]
    res = result(shape, [glass(b) for b in boxes])
    rects = LabelAnnotator().rects(shape, res)
    assert all(r is not None for r in rects)
    for i, a in enumerate(rects):
        for b in rects[i + 1 :]:
            clear = (
                a[0] + a[2] <= b[0]
                or b[0] + b[2] <= a[0]
                or a[1] + a[3] <= b[1]
                or b[1] + b[3] <= a[1]
            )
            assert clear, (a, b)


def test_nothing_there_is_written_when_finding_items_sees_none():
    from waste_vision.engine.annotators import SceneAnnotator

    shape = (360, 640, 3)
    empty = FrameResult(Frame(0, 0.0, np.full(shape, GREY, np.uint8)), [], mode="items")
    scene = SceneAnnotator().annotate(empty.frame.image.copy(), empty)
    ys, xs = np.nonzero(np.any(scene != GREY, axis=2))  # the caption, top left
    assert len(ys) > 0 and ys.min() == 0 and xs.min() == 0
    assert ys.max() < shape[0] // 2 and xs.max() < shape[1] // 2
    whole = FrameResult(Frame(0, 0.0, np.full(shape, GREY, np.uint8)), [], mode="frame")
    assert (SceneAnnotator().annotate(whole.frame.image.copy(), whole) == GREY).all()


def test_the_style_hides_the_figures_and_sets_the_smallest_type():
    """``OverlayStyle`` (part of the pipeline's configuration): figures off draws no stats;
    a larger ``min_scale`` draws larger tabs, the same for every annotator."""
    shape = (480, 640, 3)
    region = glass((200, 180, 240, 200))
    bare = result(shape, [])
    hidden = OverlayStyle(figures=False)
    assert (Overlay.default().annotate(bare.frame.image.copy(), bare, hidden) == GREY).all()
    shown = Overlay.default().annotate(bare.frame.image.copy(), bare)
    x, y, w, h = StatsAnnotator().rect(shape, bare)
    assert (shown[y : y + h, x : x + w] != GREY).any() and (shown[:y] == GREY).all()
    small = LabelAnnotator().rect(shape, region)
    large = LabelAnnotator().rect(shape, region, style=OverlayStyle(min_scale=2.0))
    assert small is not None and large is not None
    assert large[2] > 1.5 * small[2] and large[3] > 1.5 * small[3]
    big = StatsAnnotator().rect(shape, bare, OverlayStyle(min_scale=2.0))
    assert big[3] > 1.5 * h
