"""The overlay, drawn into the frame's pixels so that recordings carry it.

Modelled on roboflow/supervision's annotators: each class has one method,
``annotate(scene, result) -> scene``, that draws in place on an RGB uint8 array and returns
it, so they combine freely (``Overlay``). The array must be C-contiguous (cv2 draws into
it), and ``Frame.image`` must stay unmodified, so callers annotate a copy:
``Overlay.default().annotate(result.frame.image.copy(), result)``.

Sizes (type, lines, padding) follow the frame's shorter side (``scale_for``) so the overlay
reads the same from 480p to 4K. Nothing here assumes the frame is large or the boxes inside
it: anything outside the frame is clipped, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from waste_vision.engine.frames import Box, FrameResult, Mode, RegionResult, boxes_overlap
from waste_vision.labels import UNCERTAIN

if TYPE_CHECKING:  # the overlay only reads results; it never runs the cascade
    from waste_vision.model.cascade import CascadeResult

Colour = tuple[int, int, int]  # RGB

CLASS_COLOURS: dict[str, Colour] = {
    "organic": (40, 200, 60),  # green
    "recyclable": (40, 90, 255),  # blue; only seen when stage 2 is missing
    "cardboard": (150, 100, 50),  # brown
    "glass": (0, 220, 230),  # cyan
    "metal": (175, 180, 190),  # silver
    "paper": (140, 200, 255),  # light blue
    "plastic": (255, 165, 0),  # orange
    UNCERTAIN: (230, 0, 230),  # magenta
}
DEFAULT_COLOUR: Colour = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX

Rect = tuple[int, int, int, int]  # x, y, w, h, always inside the frame


def colour_for(label: str) -> Colour:
    return CLASS_COLOURS.get(label, DEFAULT_COLOUR)


def text_colour_on(background: Colour) -> Colour:
    """Black on light fills, white on dark ones: legible on every class colour."""
    r, g, b = background
    return (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 140 else (255, 255, 255)


@dataclass(frozen=True)
class Sizes:
    font_scale: float  # the final label
    small_scale: float  # stage probabilities and stats
    thickness: int  # text strokes
    line: int  # box outline
    pad: int  # around text


def scale_for(frame_shape: tuple[int, ...], min_scale: float = 0.0) -> Sizes:
    """Sizes for a frame, proportional to its shorter side (720 px = 1.0), at least
    ``min_scale`` (``OverlayStyle.min_scale``, see ``readable_scale``)."""
    s = max(max(min(frame_shape[:2]), 1) / 720, min_scale)
    return Sizes(
        font_scale=max(1.1 * s, 0.1),
        small_scale=max(0.7 * s, 0.1),
        thickness=max(1, round(2 * s + 0.4)),
        line=max(1, round(3 * s)),
        pad=max(1, round(8 * s)),
    )


@dataclass(frozen=True)
class OverlayStyle:
    """What the window (or ``annotate``) may change about the overlay while a source plays;
    part of ``pipeline.PipelineConfig``, so a frame is drawn with one style throughout.

    ``min_scale``: type drawn at least this large (``readable_scale``: a frame shown smaller
    than it is); ``figures``: capture and classification rates and latency drawn (off: a
    kiosk's customers see no engineering figures).
    """

    min_scale: float = 0.0
    figures: bool = True


DEFAULT_STYLE = OverlayStyle()


def readable_scale(frame_short: int | None, display_short: int | None) -> float:
    """The ``OverlayStyle.min_scale`` that keeps labels at least ~14 screen pixels tall
    where a frame whose shorter side is ``frame_short`` is shown ``display_short`` high;
    0.0 where it is shown at its own size or larger."""
    if frame_short and display_short and display_short < frame_short:
        return 0.58 * frame_short / display_short  # x 1.1 x ~22 px per unit of font
    return 0.0


def _clip(box: Box, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The part of ``box`` inside the frame as inclusive corners, or None if none is."""
    x, y, w, h = (int(v) for v in box)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + w, shape[1]) - 1, min(y + h, shape[0]) - 1
    return (x0, y0, x1, y1) if x1 >= x0 and y1 >= y0 else None


def _text_block(lines: list[tuple[str, float]], style: Sizes) -> tuple[int, int, list[int]]:
    """Width, height and baselines (relative to the top) of stacked text lines."""
    width, y, baselines = 0, style.pad, []
    for text, scale in lines:
        (w, h), base = cv2.getTextSize(text, FONT, scale, style.thickness)
        width = max(width, w)
        baselines.append(y + h)
        y += h + base + style.pad
    return width + 2 * style.pad, y, baselines


def _place(x: int, y: int, w: int, h: int, shape: tuple[int, ...]) -> Rect:
    """Shift a block so it lies inside the frame (shrunk only if the frame is smaller)."""
    w, h = min(w, shape[1]), min(h, shape[0])
    return min(max(x, 0), shape[1] - w), min(max(y, 0), shape[0] - h), w, h


def _draw_text(scene: np.ndarray, rect: Rect, lines, baselines, style: Sizes, colour: Colour):
    x, y = rect[:2]
    for (text, scale), base in zip(lines, baselines, strict=False):
        cv2.putText(
            scene,
            text,
            (x + style.pad, y + base),
            FONT,
            scale,
            colour,
            style.thickness,
            cv2.LINE_AA,
        )


class Annotator(Protocol):
    """Draws into ``scene`` (RGB uint8, C-contiguous) in ``style`` and returns it; the
    overlay and each of its parts are annotators, and ``pipeline.Pipeline`` takes one."""

    def annotate(
        self, scene: np.ndarray, result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> np.ndarray: ...


class BoxAnnotator:
    """An outline in the class colour around each region, drawn inside the region."""

    def annotate(
        self, scene: np.ndarray, result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> np.ndarray:
        sizes = scale_for(scene.shape, style.min_scale)
        for region in result.regions:
            corners = _clip(region.box, scene.shape)
            if corners is None:
                continue
            x0, y0, x1, y1 = corners
            t = sizes.line
            colour = colour_for(region.result.label)
            for bar in (
                (x0, y0, x1, y0 + t - 1),
                (x0, y1 - t + 1, x1, y1),
                (x0, y0, x0 + t - 1, y1),
                (x1 - t + 1, y0, x1, y1),
            ):
                a, b, c, d = bar  # filled bars: exact pixels, unlike thick cv2 lines
                cv2.rectangle(
                    scene, (max(a, x0), max(b, y0)), (min(c, x1), min(d, y1)), colour, cv2.FILLED
                )
        return scene


class LabelAnnotator:
    """Final label and score in large type, both stages below, on a filled class-colour tab.

    The tab sits above the region, or inside its top when there is no room above, and is
    shifted to stay inside the frame for regions at the frame's edges. Tabs never hide each
    other: each region's tab takes the first of above / inside top / below / inside bottom
    that overlaps no tab placed before it, else it is moved down until it is clear.
    """

    def __init__(self, show_stages: bool = True):
        self.show_stages = show_stages

    def lines(self, result: CascadeResult, style: Sizes) -> list[tuple[str, float]]:
        lines = [(f"{result.label} {result.score:.2f}".strip(), style.font_scale)]
        if self.show_stages:
            stages = [s for s in (result.stage1, result.stage2) if s is not None]
            text = " | ".join(f"{s.label} {s.score:.2f}" for s in stages)
            if text:
                lines.append((text, style.small_scale))
        return lines

    def rect(
        self,
        shape: tuple[int, ...],
        region: RegionResult,
        taken: Sequence[Rect] = (),
        style: OverlayStyle = DEFAULT_STYLE,
    ) -> Rect | None:
        """Where ``annotate`` puts the tab for ``region`` clear of the ``taken`` tabs; None
        for a region outside the frame."""
        corners = _clip(region.box, shape)
        if corners is None:
            return None
        sizes = scale_for(shape, style.min_scale)
        w, h, _ = _text_block(self.lines(region.result, sizes), sizes)
        x0, y0, _, y1 = corners
        candidates = [
            _place(x0, y, w, h, shape)
            for y in (y0 - h, y0, y1 + 1, y1 - h + 1)
            if 0 <= y <= shape[0] - h
        ]
        for rect in candidates or [_place(x0, y0, w, h, shape)]:
            if not any(boxes_overlap(rect, t) for t in taken):
                return rect
        rect = candidates[0] if candidates else _place(x0, y0, w, h, shape)
        while any(boxes_overlap(rect, t) for t in taken) and rect[1] + h < shape[0]:
            below = max(t[1] + t[3] for t in taken if boxes_overlap(rect, t))
            rect = _place(rect[0], below, w, h, shape)
        return rect

    def rects(
        self, shape: tuple[int, ...], result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> list[Rect | None]:
        """Every region's tab, placed in order so none hides another."""
        taken: list[Rect] = []
        out = []
        for region in result.regions:
            rect = self.rect(shape, region, taken, style)
            if rect is not None:
                taken.append(rect)
            out.append(rect)
        return out

    def annotate(
        self, scene: np.ndarray, result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> np.ndarray:
        sizes = scale_for(scene.shape, style.min_scale)
        rects = self.rects(scene.shape, result, style)
        for region, rect in zip(result.regions, rects, strict=False):
            if rect is None:
                continue
            lines = self.lines(region.result, sizes)
            baselines = _text_block(lines, sizes)[2]
            x, y, w, h = rect
            fill = colour_for(region.result.label)
            cv2.rectangle(scene, (x, y), (x + w - 1, y + h - 1), fill, cv2.FILLED)
            _draw_text(scene, rect, lines, baselines, sizes, text_colour_on(fill))
        return scene


class StatsAnnotator:
    """Capture and classification rates and latency, white on a darkened bottom-left block
    (the top-left corner is where a whole-frame region's label goes); nothing where the
    style hides the figures."""

    def lines(self, result: FrameResult, style: Sizes) -> list[tuple[str, float]]:
        text = (
            f"capture {result.capture_fps:.1f} fps  classify {result.classify_fps:.1f} fps"
            f"  latency {result.latency_ms:.0f} ms"
        )
        return [(text, style.small_scale)]

    def rect(
        self, shape: tuple[int, ...], result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> Rect:
        sizes = scale_for(shape, style.min_scale)
        w, h, _ = _text_block(self.lines(result, sizes), sizes)
        return _place(0, shape[0] - h, w, h, shape)

    def annotate(
        self, scene: np.ndarray, result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> np.ndarray:
        if not style.figures:
            return scene
        sizes = scale_for(scene.shape, style.min_scale)
        lines = self.lines(result, sizes)
        x, y, w, h = rect = self.rect(scene.shape, result, style)
        roi = scene[y : y + h, x : x + w]
        roi //= 3  # darken in place: text stays legible, the scene still shows through
        _draw_text(scene, rect, lines, _text_block(lines, sizes)[2], sizes, (255, 255, 255))
        return scene


class HeatAnnotator:
    """Where the model looked (explain on): each region's occlusion map, warm colours over
    the important parts, blended into the box."""

    def __init__(self, strength: float = 0.45):
        self.strength = strength

    def annotate(
        self, scene: np.ndarray, result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> np.ndarray:
        for region in result.regions:
            if region.heat is None:
                continue
            corners = _clip(region.box, scene.shape)
            if corners is None:
                continue
            x0, y0, x1, y1 = corners
            w, h = x1 - x0 + 1, y1 - y0 + 1
            heat = cv2.resize(region.heat.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
            colours = cv2.applyColorMap(
                np.clip(heat * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET
            )[..., ::-1]  # BGR -> RGB
            alpha = (self.strength * np.clip(heat, 0, 1))[..., None]
            roi = scene[y0 : y1 + 1, x0 : x1 + 1]
            roi[:] = (roi * (1 - alpha) + colours * alpha).astype(np.uint8)
        return scene


class SceneAnnotator:
    """With item finding on and nothing found: "nothing there" (or "learning the empty
    table") top left, so a recording says why there is no label."""

    def annotate(
        self, scene: np.ndarray, result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> np.ndarray:
        if result.mode != Mode.ITEMS or result.regions:
            return scene
        sizes = scale_for(scene.shape, style.min_scale)
        text = "learning the empty table..." if result.learning else "nothing there"
        lines = [(text, sizes.font_scale)]
        w, h, baselines = _text_block(lines, sizes)
        rect = _place(0, 0, w, h, scene.shape)
        x, y = rect[:2]
        scene[y : y + h, x : x + w] //= 3
        _draw_text(scene, rect, lines, baselines, sizes, (255, 255, 255))
        return scene


class Overlay:
    """Several annotators applied in order, each in the frame's ``OverlayStyle``;
    ``default()``: heat maps, boxes, labels, empty scene, stats. Never changed once made:
    what the window changes about drawing is the style (``PipelineConfig.overlay``)."""

    def __init__(self, annotators: Iterable[Annotator]):
        self.annotators: tuple[Annotator, ...] = tuple(annotators)

    @classmethod
    def default(cls) -> Overlay:
        return cls(
            [HeatAnnotator(), BoxAnnotator(), LabelAnnotator(), SceneAnnotator(), StatsAnnotator()]
        )

    def annotate(
        self, scene: np.ndarray, result: FrameResult, style: OverlayStyle = DEFAULT_STYLE
    ) -> np.ndarray:
        for annotator in self.annotators:
            scene = annotator.annotate(scene, result, style)
        return scene
