"""What ``--stats-json`` reports: frames captured, classified and painted, rates, latency.

Each run of a source gets a ``RunStats``: classification is ticked on the pipeline thread
(by the bridge), painting on the GUI thread (by the video widget), each by one thread only.
Rates are steady-state figures, frames after the first over the time from the first to the
last of each run, so start-up, pauses and source switches do not dilute them. Latency is
capture timestamp -> end of the paint that first put the frame on screen.
``dropped_frames`` are frames captured but never painted: skipped by the source because
classification was still busy (LATEST buffering), or replaced in the bridge because the
GUI had not painted the previous one yet.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer


@dataclass
class Ticks:
    """Events of one run: how many, the first and the last time."""

    count: int = 0
    first: float | None = None
    last: float | None = None

    def tick(self, t: float) -> None:
        if self.first is None:
            self.first = t
        self.last = t
        self.count += 1

    @property
    def span(self) -> float:
        if self.first is None or self.last is None:
            return 0.0
        return self.last - self.first


def steady_rate(runs: list[Ticks]) -> float:
    frames = sum(max(r.count - 1, 0) for r in runs)
    span = sum(r.span for r in runs)
    return frames / span if span > 0 else 0.0


@dataclass
class RunStats:
    """One source run; ``source`` is read for its ``dropped`` count (a plain int)."""

    source: object = None
    classified: Ticks = field(default_factory=Ticks)
    displayed: Ticks = field(default_factory=Ticks)
    last_index: int = -1  # the last classified frame's index (counts every captured frame)
    frame_size: tuple[int, int] | None = None  # (w, h) of the last classified frame

    @property
    def captured(self) -> int:
        dropped = getattr(self.source, "dropped", 0) or 0
        return max(self.last_index + 1, self.classified.count + dropped)


class SessionStats:
    """All runs of a window's session; ``as_json`` is the ``--stats-json`` document.

    A kiosk runs for weeks and restarts its source after every failure, so only the last
    ``MAX_RUNS`` runs are kept whole; older ones are folded into running totals, which give
    the same figures (counts and steady rates are sums over runs).
    """

    MAX_LATENCIES = 500_000  # about 4.6 h at 30 FPS; older samples are kept, newer dropped
    MAX_RUNS = 32

    def __init__(self):
        self.runs: deque[RunStats] = deque()
        self.run_count = 0  # runs ever started (the window's first-frame check)
        self.latencies_ms: list[float] = []
        # totals of the runs folded out of ``runs``
        self._captured = 0
        self._classified = Ticks()  # count: frames; first/last unused
        self._displayed = Ticks()
        self._classified_rate = [0, 0.0]  # frames after each run's first, seconds spanned
        self._displayed_rate = [0, 0.0]

    def new_run(self, source) -> RunStats:
        run = RunStats(source)
        if len(self.runs) >= self.MAX_RUNS:
            self._fold(self.runs.popleft())
        self.runs.append(run)
        self.run_count += 1
        return run

    def _fold(self, old: RunStats) -> None:
        self._captured += old.captured
        for ticks, total, rate in (
            (old.classified, self._classified, self._classified_rate),
            (old.displayed, self._displayed, self._displayed_rate),
        ):
            total.count += ticks.count
            rate[0] += max(ticks.count - 1, 0)
            rate[1] += ticks.span

    @staticmethod
    def _rate(runs: list[Ticks], folded: list) -> float:
        frames = folded[0] + sum(max(r.count - 1, 0) for r in runs)
        span = folded[1] + sum(r.span for r in runs)
        return frames / span if span > 0 else 0.0

    def painted(self, run: RunStats, capture_ts: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        run.displayed.tick(now)
        if len(self.latencies_ms) < self.MAX_LATENCIES:
            self.latencies_ms.append((now - capture_ts) * 1000.0)

    def as_json(self) -> dict:
        runs = list(self.runs)
        captured = self._captured + sum(r.captured for r in runs)
        displayed = self._displayed.count + sum(r.displayed.count for r in runs)
        lat = np.asarray(self.latencies_ms, dtype=np.float64)
        pct = (lambda q: round(float(np.percentile(lat, q)), 2)) if lat.size else (lambda q: None)
        return {
            "frames_captured": captured,
            "frames_displayed": displayed,
            "frames_classified": self._classified.count + sum(r.classified.count for r in runs),
            "display_fps": round(self._rate([r.displayed for r in runs], self._displayed_rate), 2),
            "classified_fps": round(
                self._rate([r.classified for r in runs], self._classified_rate), 2
            ),
            "latency_ms_p50": pct(50),
            "latency_ms_p95": pct(95),
            "dropped_frames": max(captured - displayed, 0),
        }


class StallMeter(QObject):
    """How long the GUI thread was busy: a precise 10 ms timer that notes how late it fires.

    A late tick means the event loop could not run for that long; the longest lateness is
    the worst GUI stall (includes time the OS gave the CPU to other processes).
    """

    INTERVAL_MS = 10

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self.max_stall_ms = 0.0
        self._last: float | None = None
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(self.INTERVAL_MS)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._last = None
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _tick(self) -> None:
        now = time.monotonic()
        if self._last is not None:
            late = (now - self._last) * 1000.0 - self.INTERVAL_MS
            self.max_stall_ms = max(self.max_stall_ms, late)
        self._last = now
