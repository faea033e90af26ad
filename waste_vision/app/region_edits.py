"""A RegionSet the GUI edits while the pipeline thread reads it.

The pipeline calls ``boxes()`` (which also moves tracking zones) on its thread; the GUI adds
and removes regions on its own. Edits are queued and applied under a lock: at once when the
pipeline is not inside ``boxes()``, else by the pipeline just before its next ``boxes()``.
So the GUI never waits for the pipeline, and the pipeline never sees a list changing under it.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from waste_vision.engine.frames import Box
from waste_vision.engine.regions import RegionSet


@dataclass
class LiveRegionSet(RegionSet):
    def __post_init__(self):
        self._lock = threading.Lock()
        self._pending: deque = deque()

    def add(self, box: Box, track: bool = False) -> None:
        self._edit(lambda: RegionSet.add(self, box, track))

    def set_tracking(self, on: bool) -> None:
        self._edit(lambda: RegionSet.set_tracking(self, on))

    def remove(self, index: int) -> None:
        self._edit(lambda: RegionSet.remove(self, index))

    def clear(self) -> None:
        self._edit(lambda: RegionSet.clear(self))

    def remove_last(self) -> None:
        self._edit(lambda: self.regions and self.regions.pop())

    def remove_at(self, x: float, y: float) -> None:
        """Remove the most recently added region whose current box holds (x, y)."""

        def remove():
            for i in reversed(range(len(self.regions))):
                bx, by, bw, bh = self.regions[i].box or self.regions[i].home
                if bx <= x < bx + bw and by <= y < by + bh:
                    del self.regions[i]
                    return

        self._edit(remove)

    def toggle_tracking_at(self, x: float, y: float) -> None:
        """The newest region holding (x, y) starts or stops following its item."""

        def toggle():
            for zone in reversed(self.regions):
                bx, by, bw, bh = zone.box or zone.home
                if bx <= x < bx + bw and by <= y < by + bh:
                    zone.track, zone.missing = not zone.track, 0
                    if not zone.track:
                        zone.box = zone.home
                    return

        self._edit(toggle)

    def boxes(self, image: np.ndarray, found: list[Box] | None = None) -> list[Box]:
        with self._lock:
            self._apply()
            return RegionSet.boxes(self, image, found)

    def _edit(self, change) -> None:
        self._pending.append(change)  # deque.append is atomic
        if self._lock.acquire(blocking=False):
            try:
                self._apply()
            finally:
                self._lock.release()

    def _apply(self) -> None:
        while True:
            try:
                change = self._pending.popleft()
            except IndexError:
                return
            change()
