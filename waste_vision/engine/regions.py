"""Regions drawn by hand (zones), classified on their crop, clamped to any frame size.

A zone is drawn as a ``ZoneSpec`` (frozen: part of the pipeline's configuration) and
followed by the pipeline thread as a ``Zone``; it stays where it was drawn unless tracking is
turned on for it. The whole frame is the region when none is drawn. Boxes are clamped to the frame whatever its size —
the original project hard-coded 1279x719.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from waste_vision.engine.frames import Box, overlap_of_smaller
from waste_vision.errors import UserError

MIN_SIDE = 8  # pixels; a smaller crop says nothing to the classifier


def parse_box(text: str) -> Box:
    """``"x,y,w,h"`` -> a box; ``UserError`` naming the text otherwise."""
    try:
        x, y, w, h = (int(round(float(v))) for v in text.split(","))
    except ValueError:
        raise UserError(f"region {text!r} must be x,y,w,h in pixels, e.g. 100,50,320,240") from None
    if w <= 0 or h <= 0:
        raise UserError(f"region {text!r} needs a positive width and height")
    return x, y, w, h


def clamp_box(box: Box, width: int, height: int) -> Box | None:
    """The part of ``box`` inside a ``width`` x ``height`` frame, or None if too little is left."""
    x, y, w, h = box
    x0, y0 = max(0, min(x, width)), max(0, min(y, height))
    x1, y1 = max(0, min(x + w, width)), max(0, min(y + h, height))
    if x1 - x0 < min(MIN_SIDE, width) or y1 - y0 < min(MIN_SIDE, height):
        return None
    return x0, y0, x1 - x0, y1 - y0


def crop(image: np.ndarray, box: Box) -> np.ndarray:
    x, y, w, h = box
    return image[y : y + h, x : x + w]


@dataclass(frozen=True)
class ZoneSpec:
    """One zone as drawn: where (``home``, in frame pixels) and whether it follows the item
    in it (``track``). What a ``pipeline.PipelineConfig`` holds (a tuple of them); the
    pipeline thread keeps a ``Zone`` for each, with its tracking state (``RegionSet.sync``).
    """

    home: Box
    track: bool = False

    def __post_init__(self) -> None:
        x, y, w, h = (int(v) for v in self.home)
        object.__setattr__(self, "home", (x, y, w, h))
        object.__setattr__(self, "track", bool(self.track))


Zones = tuple[ZoneSpec, ...]  # the zones of a configuration, in the order drawn


@dataclass
class Zone:
    """One region drawn by hand, as the pipeline thread follows it. By default a fixed
    zone: what lies inside it is classified, and it never moves. With ``track`` on it
    follows the item found nearest to it (items found against the learnt empty scene,
    ``scene.EmptyScene``: ~1 ms a frame where OpenCV's MIL tracker took ~35 ms per region
    and drifted to the frame's edge), and goes back to where it was drawn once no item has
    been near it for ``home_after`` frames.
    """

    home: Box  # where it was drawn
    track: bool = False
    box: Box | None = None  # where it is now (clamped); starts at home
    missing: int = 0  # consecutive frames without an item near a tracking zone
    home_after: int = 8

    def __post_init__(self):
        if self.box is None:
            self.box = self.home

    @property
    def spec(self) -> ZoneSpec:
        return ZoneSpec(self.home, self.track)

    def update(self, image: np.ndarray, found: list[Box] | None = None) -> Box | None:
        h, w = image.shape[:2]
        current = self.box or self.home
        if self.track and found is not None:
            near = max(found, key=lambda f: overlap_of_smaller(current, f), default=None)
            if near is not None and overlap_of_smaller(current, near) >= 0.3:
                current, self.missing = near, 0
            else:
                self.missing += 1
                if self.missing >= self.home_after:
                    current = self.home
        elif not self.track:
            current = self.home
        self.box = clamp_box(current, w, h)
        return self.box


class RegionSet:
    """The zones of a pipeline, with their tracking state; none means the whole frame is
    classified. Owned by the pipeline thread: it is never edited, only brought in line with
    a configuration's zone specs once per frame (``sync``)."""

    def __init__(self, specs: Zones = ()):
        self.regions: list[Zone] = []
        self._specs: Zones = ()
        # where each zone was put on the last frame (None: outside it), published whole
        # for the window (which zone a click is on), never changed in place
        self.placed: tuple[tuple[ZoneSpec, Box | None], ...] = ()
        self.sync(specs)

    def sync(self, specs: Zones) -> None:
        """Take ``specs`` as the zones: each zone whose spec is unchanged keeps its tracking
        state (where it is now, frames without its item); new or changed ones start where
        they were drawn; the others are dropped."""
        specs = tuple(specs)
        if specs == self._specs:
            return
        kept: dict[ZoneSpec, list[Zone]] = {}
        for zone in self.regions:
            kept.setdefault(zone.spec, []).append(zone)
        self.regions = [
            kept[spec].pop(0) if kept.get(spec) else Zone(spec.home, spec.track) for spec in specs
        ]
        self._specs = specs
        self.placed = tuple((z.spec, z.box) for z in self.regions)

    @property
    def tracking(self) -> bool:
        """Some zone follows its item (the pipeline then finds items for it)."""
        return any(z.track for z in self.regions)

    def boxes(self, image: np.ndarray, found: list[Box] | None = None) -> list[Box]:
        """This frame's boxes: each zone (followed where tracking) clamped to the frame, or
        the whole frame when there are none. ``found``: the items found this frame."""
        h, w = image.shape[:2]
        if not self.regions:
            return [(0, 0, w, h)]
        placed = [z.update(image, found) for z in self.regions]
        self.placed = tuple((z.spec, b) for z, b in zip(self.regions, placed, strict=True))
        return [b for b in placed if b is not None]
