"""Regions drawn by hand (zones), classified on their crop, clamped to any frame size.

A zone stays where it was drawn unless tracking is turned on for it (``Zone``); the whole
frame is the region when none is drawn. Boxes are clamped to the frame whatever its size —
the original project hard-coded 1279x719.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Zone:
    """One region drawn by hand. By default a fixed zone: what lies inside it is
    classified, and it never moves. With ``track`` on it follows the item found nearest
    to it (items found against the learnt empty scene, ``scene.EmptyScene``: ~1 ms a frame
    where OpenCV's MIL tracker took ~35 ms per region and drifted to the frame's edge), and
    goes back to where it was drawn once no item has been near it for ``home_after`` frames.
    """

    home: Box  # where it was drawn
    track: bool = False
    box: Box | None = None  # where it is now (clamped); starts at home
    missing: int = 0  # consecutive frames without an item near a tracking zone
    home_after: int = 8

    def __post_init__(self):
        if self.box is None:
            self.box = self.home

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


@dataclass
class RegionSet:
    """All regions of a session; empty means the whole frame is classified."""

    regions: list[Zone] = field(default_factory=list)

    def add(self, box: Box, track: bool = False) -> None:
        self.regions.append(Zone(box, track))

    def remove(self, index: int) -> None:
        del self.regions[index]

    def clear(self) -> None:
        self.regions.clear()

    def snapshot(self) -> RegionSet:
        """The zones drawn now, in a set of their own: the pipeline classifies a whole frame
        with the zones it started with while the window adds or removes some."""
        return RegionSet(list(self.regions))

    @property
    def tracking(self) -> bool:
        """Some zone follows its item (the pipeline then finds items for it)."""
        return any(z.track for z in self.regions)

    def set_tracking(self, on: bool) -> None:
        """Every zone follows its item (on) or stays where it was drawn (off)."""
        for zone in self.regions:
            zone.track = on
            zone.missing = 0
            if not on:
                zone.box = zone.home

    def boxes(self, image: np.ndarray, found: list[Box] | None = None) -> list[Box]:
        """This frame's boxes: each zone (followed where tracking) clamped to the frame, or
        the whole frame when there are none. ``found``: the items found this frame."""
        h, w = image.shape[:2]
        if not self.regions:
            return [(0, 0, w, h)]
        return [b for b in (z.update(image, found) for z in self.regions) if b is not None]
