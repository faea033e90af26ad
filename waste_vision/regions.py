"""Regions of interest: rectangles followed from frame to frame and classified on their crop.

The whole frame is the default region. A user-drawn rectangle is handed to an OpenCV
tracker (MIL, the one the headless main wheel ships without extra model files; KCF or CSRT
when the contrib wheel is installed) and clamped to the frame whatever its size — the
original project hard-coded 1279x719.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from waste_vision.errors import UserError
from waste_vision.frames import Box

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
    return image[y:y + h, x:x + w]


def create_tracker():
    """The best tracker the installed OpenCV offers without downloading model files."""
    for name in ("TrackerCSRT_create", "TrackerKCF_create"):
        factory = getattr(cv2, name, None) or getattr(getattr(cv2, "legacy", None), name, None)
        if factory is not None:
            return factory()
    return cv2.TrackerMIL_create()


@dataclass
class TrackedRegion:
    """One user region: its current box (clamped) and the tracker following it."""

    box: Box
    tracker: object | None = None
    lost: bool = False

    def update(self, image: np.ndarray) -> Box | None:
        h, w = image.shape[:2]
        if self.tracker is None:
            clamped = clamp_box(self.box, w, h)
            if clamped is None:
                self.lost = True
                return None
            self.tracker = create_tracker()
            self.tracker.init(image, clamped)
            self.box = clamped
            return clamped
        ok, found = self.tracker.update(image)
        if ok:
            clamped = clamp_box(tuple(int(v) for v in found), w, h)
            if clamped is not None:
                self.box = clamped
        self.lost = not ok
        return clamp_box(self.box, w, h)


@dataclass
class RegionSet:
    """All regions of a session; empty means the whole frame is classified."""

    regions: list[TrackedRegion] = field(default_factory=list)
    track: bool = True

    def add(self, box: Box) -> None:
        self.regions.append(TrackedRegion(box))

    def remove(self, index: int) -> None:
        del self.regions[index]

    def clear(self) -> None:
        self.regions.clear()

    def boxes(self, image: np.ndarray) -> list[Box]:
        """This frame's boxes: tracked and clamped, or the whole frame when there are none."""
        h, w = image.shape[:2]
        if not self.regions:
            return [(0, 0, w, h)]
        out = []
        for region in self.regions:
            box = region.update(image) if self.track else clamp_box(region.box, w, h)
            if box is not None:
                out.append(box)
        return out
