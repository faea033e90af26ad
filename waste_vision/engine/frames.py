"""The records that flow source -> cascade -> sinks (window, recorder, log).

A ``Frame`` is what a source produces; a ``FrameResult`` is a frame after classification.
Both are plain, immutable data so they can cross threads without locks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # records only carry results; they never run the cascade
    from waste_vision.cascade import CascadeResult

Box = tuple[int, int, int, int]  # x, y, w, h in frame pixels


def boxes_overlap(a: Box, b: Box) -> bool:
    """Two x, y, w, h boxes share some area (touching edges do not count)."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


@dataclass(frozen=True)
class Frame:
    """One captured image. ``index`` counts frames the source produced (dropped ones too)."""

    index: int
    timestamp: float  # time.monotonic() when captured
    image: np.ndarray  # RGB uint8 (H, W, 3); never modified after capture
    source_fps: float | None = None  # the source's nominal rate, when it has one
    position_s: float | None = None  # position in a file, when the source is a file
    still: bool = False  # a photo (an image folder), not a moment of one scene: classified alone


EMPTY = "empty"  # the verdict when item finding sees nothing on the table


@dataclass(frozen=True)
class RegionResult:
    box: Box  # the region classified, clamped to the frame
    result: CascadeResult
    kind: str = "frame"  # "item" (found), "zone" (drawn) or "frame" (the whole frame)
    item_id: int | None = None  # found items: the same id while the item stays
    heat: np.ndarray | None = None  # where the model looked (explain on): grid of 0..1


@dataclass(frozen=True)
class FrameResult:
    frame: Frame
    regions: list[RegionResult] = field(default_factory=list)
    latency_ms: float = 0.0  # capture -> classification done
    capture_fps: float = 0.0
    classify_fps: float = 0.0
    mode: str = "frame"  # what was classified: "items", "zones" or "frame"
    learning: bool = False  # item finding is still learning the empty scene
    counted: tuple[str, ...] = ()  # labels of the items counted at this frame

    @property
    def verdict(self) -> str:
        """``empty`` when nothing is found, else the label of the largest region."""
        if not self.regions:
            return EMPTY
        largest = max(self.regions, key=lambda r: r.box[2] * r.box[3])
        return largest.result.label
