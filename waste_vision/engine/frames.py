"""The records that flow source -> cascade -> sinks (window, recorder, log).

A ``Frame`` is what a source produces; a ``FrameResult`` is a frame after classification.
Both are plain, immutable data so they can cross threads without locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from waste_vision.labels import EMPTY, Mode, RegionKind

__all__ = [  # Mode, RegionKind and EMPTY live in labels.py; the records carry them
    "EMPTY",
    "Box",
    "Frame",
    "FrameResult",
    "Mode",
    "RegionKind",
    "RegionResult",
    "boxes_overlap",
    "intersection",
    "iou",
    "overlap_of_smaller",
]

if TYPE_CHECKING:  # records only carry results; they never run the cascade
    from waste_vision.model.cascade import CascadeResult

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


def boxes_overlap(a: Box, b: Box) -> bool:
    """Two x, y, w, h boxes share some area (touching edges do not count)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def intersection(a: Box, b: Box) -> int:
    """The area two x, y, w, h boxes share (0 when apart)."""
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy


def iou(a: Box, b: Box) -> float:
    """Intersection over union: 1 for the same box, 0 for boxes apart."""
    inter = intersection(a, b)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def overlap_of_smaller(a: Box, b: Box) -> float:
    """Intersection over the smaller box: 1 when one holds the other."""
    smaller = min(a[2] * a[3], b[2] * b[3])
    return intersection(a, b) / smaller if smaller > 0 else 0.0


@dataclass(frozen=True)
class Frame:
    """One captured image. ``index`` counts frames the source produced (dropped ones too)."""

    index: int
    timestamp: float  # time.monotonic() when captured
    image: np.ndarray  # RGB uint8 (H, W, 3); never modified after capture
    source_fps: float | None = None  # the source's nominal rate, when it has one
    position_s: float | None = None  # position in a file, when the source is a file
    still: bool = False  # a photo (an image folder), not a moment of one scene: classified alone


@dataclass(frozen=True)
class RegionResult:
    box: Box  # the region classified, clamped to the frame
    result: CascadeResult
    kind: RegionKind = RegionKind.FRAME  # a found item, a drawn zone or the whole frame
    item_id: int | None = None  # found items: the same id while the item stays
    heat: np.ndarray | None = None  # where the model looked (explain on): grid of 0..1


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    regions: list[RegionResult] = field(default_factory=list)
    latency_ms: float = 0.0  # capture -> classification done
    capture_fps: float = 0.0
    classify_fps: float = 0.0
    mode: Mode = Mode.FRAME  # what was classified
    learning: bool = False  # item finding is still learning the empty scene
    counted: tuple[str, ...] = ()  # labels of the items counted at this frame
    # the region of each item counted at this frame, in ``counted``'s order (its box, item
    # id and this frame's scores): what the events database keeps of it
    counted_regions: tuple[RegionResult, ...] = ()

    @property
    def verdict(self) -> str:
        """``empty`` when nothing is found, else the label of the largest region."""
        if not self.regions:
            return EMPTY
        largest = max(self.regions, key=lambda r: r.box[2] * r.box[3])
        return largest.result.label
