"""The one crossing from the pipeline thread into the GUI thread; the newest frame wins.

``BridgeSink`` is the window's sink in the pipeline. Its ``write`` runs on the pipeline
thread: it scales the annotated frame to the size the video widget shows (so the GUI thread
only blits) and parks it in a one-slot mailbox. ``frameReady`` is emitted only when the slot
was empty, and crosses threads as a queued signal; the GUI then ``take()``s whatever is
newest. A frame the GUI had not taken yet is replaced rather than queued, so a busy GUI
never falls behind the camera and never shows stale frames.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
from PySide6.QtCore import QObject, Signal

from waste_vision.app.stats import RunStats
from waste_vision.engine.frames import FrameResult


@dataclass(frozen=True)
class Delivery:
    """A classified frame on its way to the screen."""

    run_id: int
    result: FrameResult
    annotated: np.ndarray  # full size with the overlay: snapshots use this
    display: np.ndarray  # the same, scaled to the widget's size (may be ``annotated``)
    stats: RunStats


def fit_size(frame_wh: tuple[int, int], area_wh: tuple[int, int]) -> tuple[int, int]:
    """The largest size with the frame's aspect ratio that fits the area (at least 1x1)."""
    fw, fh = frame_wh
    aw, ah = area_wh
    scale = min(aw / fw, ah / fh)
    return max(1, round(fw * scale)), max(1, round(fh * scale))


def scale_for_display(image: np.ndarray, area_wh: tuple[int, int] | None) -> np.ndarray:
    """``image`` resized to fit ``area_wh`` with its aspect kept; itself if it already fits."""
    if area_wh is None or area_wh[0] < 2 or area_wh[1] < 2:
        return image
    h, w = image.shape[:2]
    size = fit_size((w, h), area_wh)
    if abs(size[0] - w) <= 1 and abs(size[1] - h) <= 1:
        return image
    shrink = size[0] < w * 0.5  # area averaging only where linear would alias
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class FrameBridge(QObject):
    """Lives in the GUI thread; ``push`` may be called from any thread."""

    frameReady = Signal()

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._lock = threading.Lock()
        self._slot: Delivery | None = None
        self._pending = False
        self.replaced = 0  # classified frames the GUI never took (latest wins)
        self.run_id = 0  # frames from any other run are ignored (a source being switched off)
        self.display_size: tuple[int, int] | None = None  # device pixels; set by the GUI

    def sink(self, run_id: int, stats: RunStats) -> BridgeSink:
        return BridgeSink(self, run_id, stats)

    def push(
        self, run_id: int, result: FrameResult, annotated: np.ndarray, stats: RunStats
    ) -> None:
        stats.classified.tick(time.monotonic())
        stats.last_index = result.frame.index
        stats.frame_size = (annotated.shape[1], annotated.shape[0])
        if run_id != self.run_id:
            return
        delivery = Delivery(
            run_id, result, annotated, scale_for_display(annotated, self.display_size), stats
        )
        with self._lock:
            if self._slot is not None:
                self.replaced += 1
            self._slot = delivery
            notify, self._pending = not self._pending, True
        if notify:
            with contextlib.suppress(RuntimeError):  # the window is gone (shutting down)
                self.frameReady.emit()

    def take(self) -> Delivery | None:
        """The newest frame, once; None if it was already taken."""
        with self._lock:
            delivery, self._slot, self._pending = self._slot, None, False
        return delivery


class BridgeSink:
    """The pipeline-side end: a ``Sink`` for one run."""

    def __init__(self, bridge: FrameBridge, run_id: int, stats: RunStats):
        self.bridge, self.run_id, self.stats = bridge, run_id, stats

    def write(self, result: FrameResult, annotated: np.ndarray) -> None:
        self.bridge.push(self.run_id, result, annotated, self.stats)

    def close(self) -> None:
        pass
