"""The engine's life cycle behind the window: start, stop and switch sources, record, snapshot.

Anything that can take long — opening a camera or a stream (seconds), stopping a source (it
joins the capture thread), closing a recording (joins its segments) — runs on one control
thread, in the order asked, so the GUI thread never waits for it; results come back as
queued signals. Each run's pipeline loops in its own thread through ``Pipeline.run`` (rather
than ``Pipeline.start``) so that the end of a run — a file that ended, a source that failed,
an error in classification — is reported the moment it happens.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PySide6.QtCore import QObject, Qt, Signal

from waste_vision.app.bridge import FrameBridge
from waste_vision.app.stats import RunStats, SessionStats, steady_rate
from waste_vision.engine.annotators import Overlay, readable_scale
from waste_vision.engine.fleet import FleetOutputs
from waste_vision.engine.frames import Box
from waste_vision.engine.pipeline import FrameClassifier, Pipeline, PipelineConfig
from waste_vision.engine.regions import Zones, ZoneSpec
from waste_vision.engine.sinks import RecordingSink
from waste_vision.engine.sources import (
    Buffering,
    SourceStatus,
    StatusEvent,
    VideoSource,
    list_cameras,
    open_source,
)
from waste_vision.errors import UserError
from waste_vision.labels import Mode
from waste_vision.model.cascade import Cascade, DecisionRule

log = logging.getLogger(__name__)

PIPELINE_JOIN_S = 3.0  # a pipeline step takes milliseconds; longer means a stuck sink
SHUTDOWN_TIMEOUT_S = 30.0
MAX_SAVED_LISTED = 100
FOLDER_HINT = "choose another folder (Record > Recording folder…) or free some disk space"


class Stop(enum.StrEnum):
    """Why a run stopped (``LiveSession.stopped``); a ``StrEnum``, so it crosses the Qt
    signal as the plain string it equals."""

    ASKED = "stopped"  # stop() or another source asked for
    ENDED = "ended"  # the end of a file or a slideshow
    FAILED = "failed"  # the source did not open, or broke
    ERROR = "error"  # classification raised


class ControlThread:
    """One worker thread that runs submitted calls in order; a stuck call blocks only it."""

    def __init__(self, name: str = "waste-vision control"):
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable, *args) -> Future:
        future: Future = Future()
        self._queue.put((future, fn, args))
        return future

    def close(self) -> None:
        self._queue.put(None)

    def join(self, timeout: float | None = None) -> bool:
        """After ``close``: wait for the calls already submitted and their futures' callbacks
        (a future's waiters wake before its callbacks run). True when the thread ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            future, fn, args = item
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                log.warning(
                    "%s failed: %s: %s", getattr(fn, "__name__", fn), type(exc).__name__, exc
                )
                future.set_exception(exc)


@dataclass
class Run:
    """One source from start to stop; owned by the control thread."""

    id: int
    spec: str
    source: VideoSource
    pipeline: Pipeline
    thread: threading.Thread
    stats: RunStats
    last_status: list = field(default_factory=lambda: [""])  # latest status message
    recording: RecordingSink | None = None


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """``folder/stem-YYYYmmdd-HHMMSS.suffix``, with -2, -3 ... if that name is taken, or the
    name of the JSONL log a recording writes beside it (a user's file is never replaced)."""
    base = f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    for n in range(1, 1000):
        path = folder / (base + (f"-{n}" if n > 1 else "") + suffix)
        if not path.exists() and not path.with_suffix(".jsonl").exists():
            return path
    raise OSError(f"too many files named {base}* in {folder}")


class LiveSession(QObject):
    """Source -> pipeline -> bridge for one window; every public method returns at once."""

    started = Signal(int, str)  # run id, source name
    stopped = Signal(int, str, str)  # run id, why (a ``Stop``), message
    sourceStatus = Signal(int, object)  # run id, StatusEvent (sent from the capture thread)
    recordingStarted = Signal(str)  # the file being written
    recordingFinished = Signal(str, str)  # the file written ("" if none), error ("" if none)
    snapshotSaved = Signal(str, str)  # the file written ("" if none), error ("" if none)
    camerasFound = Signal(list)
    shutdownFinished = Signal()  # shutdown_async() is done: pipeline, source, recording
    _pipelineEnded = Signal(int)

    def __init__(
        self,
        cascade: Cascade,
        overlay: Overlay | None = None,
        parent: QObject | None = None,
    ):
        super().__init__(parent)
        self.cascade = cascade
        self.overlay = overlay or Overlay.default()
        # how frames are classified and drawn (mode, zones, reuse, explain, thresholds,
        # overlay style): replaced whole on every change, kept for every later source
        # (--classify-every-frame: reuse off)
        self.config = PipelineConfig(mode=Mode.ITEMS)
        self.camera: tuple[tuple[int, int] | None, float | None] = (None, None)  # asked size, fps
        self._classifier: FrameClassifier | None = None  # the current run's
        # the events database, MQTT and metrics (main.py opens them): every run's sinks too
        self.fleet: FleetOutputs | None = None
        self.bridge = FrameBridge(self)
        self.stats = SessionStats()
        # the files recorded this session, printed at exit (the newest, in a kiosk run for weeks)
        self.saved_recordings: deque[str] = deque(maxlen=MAX_SAVED_LISTED)
        self.current_id = 0  # the latest run asked for (GUI thread's view)
        self.active = False  # that run is starting or running (GUI thread's view)
        self._run: Run | None = None  # control thread's
        self._control = ControlThread()
        self._emit_lock = threading.RLock()  # held while a worker thread emits (see detach)
        self._detached = False
        self._closed = False
        self._shutdown: Future | None = None
        self.stopped.connect(self._on_stopped)
        self._pipelineEnded.connect(self._on_pipeline_ended, Qt.ConnectionType.QueuedConnection)

    # -- GUI thread API ---------------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """What is classified without drawn regions (``pipeline.MODES``)."""
        return self.config.mode

    def set_mode(self, mode: Mode) -> None:
        """``items`` (find each item on the table) or ``frame`` (classify the whole frame);
        takes effect at the next frame, and for every later source."""
        self._configure(mode=mode)

    def set_reuse(self, on: bool) -> None:
        """Unchanged regions keep their last result (off: every crop of every frame)."""
        self._configure(reuse=bool(on))

    def set_overlay_figures(self, shown: bool) -> None:
        """Rates and latency drawn into the video (and recordings), or not (kiosk)."""
        self._configure(overlay=dataclasses.replace(self.config.overlay, figures=bool(shown)))

    def fit_overlay(self, frame_short: int | None, display_short: int | None) -> None:
        """Overlay type readable where the frame is shown ``display_short`` pixels high
        (a small window): ``annotators.readable_scale``."""
        scale = readable_scale(frame_short, display_short)
        self._configure(overlay=dataclasses.replace(self.config.overlay, min_scale=scale))

    @property
    def zones(self) -> Zones:
        """The zones drawn (``region_edits`` makes the new ones)."""
        return self.config.zones

    def set_zones(self, zones: Zones) -> None:
        """These zones from the next frame on; an unchanged one keeps following its item."""
        self._configure(zones=tuple(zones))

    @property
    def zones_placed(self) -> tuple[tuple[ZoneSpec, Box | None], ...]:
        """Where the running pipeline put each zone on its last frame (``RegionSet.placed``;
        kept after a run stops, empty before the first)."""
        classifier = self._classifier
        return () if classifier is None else classifier.regions.placed

    @property
    def rule(self) -> DecisionRule:
        """The decision rule frames are classified under: the configuration's, or the
        cascade's own where it has none."""
        return self.config.thresholds or self.cascade.rule

    def set_thresholds(
        self, stage1: float | None = None, min_confidence: float | None = None
    ) -> DecisionRule:
        """Change the decision rule (clamped into range, ``DecisionRule.adjusted``) from the
        next frame on; returns the new rule."""
        rule = self.rule.adjusted(stage1, min_confidence)
        self._configure(thresholds=rule)
        return rule

    def reset_thresholds(self) -> DecisionRule:
        """Back to the cascade's own rule (the manifest's: the one the models were
        calibrated for)."""
        self._configure(thresholds=None)
        return self.rule

    def set_explain(self, on: bool) -> None:
        """Show where the model looked on each item (a few extra model calls a frame)."""
        self._configure(explain=bool(on))

    def _configure(self, **changes: Any) -> None:
        """A new ``PipelineConfig`` replaces the old one whole, here and in the running
        pipeline, which takes it once per frame: a frame never mixes old and new settings."""
        config = dataclasses.replace(self.config, **changes)
        if config == self.config:
            return  # (a window resized to the same type size, say)
        self.config = config
        classifier = self._classifier
        if classifier is not None:
            classifier.config = config  # one assignment: atomic for the pipeline thread

    def break_item(self) -> None:
        """The next steady verdict starts a new item (frame/zone modes): asked through the
        configuration (``PipelineConfig.item_epoch``), so the pipeline thread does it when it
        takes the next frame's configuration; its tally is never touched from here. (A change
        of zones or mode does it without asking.)"""
        self._configure(item_epoch=self.config.item_epoch + 1)

    def relearn_empty_scene(self) -> None:
        """The next frames (the view must be empty) become the empty scene."""
        if self._classifier is not None:
            self._classifier.scene.relearn()  # acted on in the pipeline thread

    def start(self, spec: str, loop: bool = False) -> int:
        """Stop whatever plays and start ``spec`` (camera index, path or URL); the run's id."""
        self.current_id += 1
        self.active = True
        self.bridge.run_id = self.current_id  # frames of the old run stop reaching the screen
        self._control.submit(self._start, self.current_id, str(spec), loop)
        return self.current_id

    def stop(self) -> None:
        self.active = False
        self._control.submit(self._stop)

    def start_recording(self, folder: Path) -> None:
        self._control.submit(self._start_recording, Path(folder).expanduser())

    def stop_recording(self) -> None:
        self._control.submit(self._stop_recording)

    def recording_error(self) -> str | None:
        """A recording that has failed since it started (polled by the window)."""
        run = self._run
        sink = run.recording if run is not None else None
        return sink.error if sink is not None else None

    def set_loop(self, loop: bool) -> None:
        """Files and folders read ``loop`` at the end of each pass, so this applies live."""
        run = self._run
        if run is not None and hasattr(run.source, "loop"):
            run.source.loop = bool(loop)

    def save_snapshot(self, annotated: np.ndarray, folder: Path) -> None:
        folder = Path(folder).expanduser()

        def save():
            try:
                folder.mkdir(parents=True, exist_ok=True)
                path = unique_path(folder, "waste-vision-snapshot", ".png")
                if not cv2.imwrite(str(path), cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR)):
                    raise OSError(f"OpenCV could not write {path}")
            except OSError as exc:
                self._emit(
                    self.snapshotSaved,
                    "",
                    f"cannot save a snapshot in {folder} ({exc.strerror or exc}); {FOLDER_HINT}",
                )
                return
            self._emit(self.snapshotSaved, str(path), "")

        threading.Thread(target=save, name="waste-vision snapshot", daemon=True).start()

    def probe_cameras(self, probe: Callable[[], list[int]] | None = None) -> None:
        """Find working cameras in the background; the answer comes as ``camerasFound``."""

        def work():
            try:
                found = list((probe or (lambda: list_cameras(4)))())
            except Exception as exc:  # a broken driver must not take the app down
                log.warning("camera probe failed: %s", exc)
                found = []
            self._emit(self.camerasFound, found)

        threading.Thread(target=work, name="waste-vision camera probe", daemon=True).start()

    def shutdown_async(self) -> Future:
        """Stop the pipeline and the source and finish any recording on the control thread;
        returns at once. ``shutdownFinished`` is emitted (and the future done) when all is
        done, so the window can say "finishing recording…" and quit then."""
        if self._shutdown is not None:
            return self._shutdown
        self._closed = True
        self.active = False
        self.bridge.run_id = -1  # no more frames to the screen
        future = self._control.submit(self._stop_for_good)
        future.add_done_callback(lambda _f: self._emit(self.shutdownFinished))
        self._control.close()
        self._shutdown = future
        return future

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        """``shutdown_async`` and wait for it, up to ``timeout`` (at exit, off the GUI's
        event loop)."""
        future = self.shutdown_async()
        try:
            future.result(timeout)
        except Exception as exc:
            log.warning("shutting down: %s", exc or type(exc).__name__)

    # -- control thread ---------------------------------------------------------------------

    def detach(self, timeout: float = PIPELINE_JOIN_S) -> None:
        """At exit, after ``shutdown`` and before the window is deleted: the control thread
        has ended and no thread of this session (a camera probe, a snapshot, a late status)
        signals any more. A signal emitted while Qt deleted its object crashed the process."""
        if not self._control.join(timeout):
            log.warning("the session's control thread did not end within %.0f s", timeout)
        with self._emit_lock:  # an emit in progress ends first
            self._detached = True

    def _emit(self, signal, *args) -> None:
        with self._emit_lock:
            if self._detached:
                return
            with contextlib.suppress(RuntimeError):  # the window destroyed meanwhile
                signal.emit(*args)

    def _start(self, run_id: int, spec: str, loop: bool) -> None:
        self._finish(self._run, Stop.ASKED, "")
        if run_id != self.current_id:  # another source was asked for meanwhile
            self._emit(self.stopped, run_id, Stop.ASKED, "")
            return
        last_status = [""]

        def on_status(event: StatusEvent) -> None:  # capture thread: keep it quick
            last_status[0] = event.message
            if self.fleet is not None:
                self.fleet.status(event)
            self._emit(self.sourceStatus, run_id, event)

        try:
            source = open_source(
                spec,
                buffering=Buffering.LATEST,
                paced=True,
                loop=loop,
                camera_size=self.camera[0],
                camera_fps=self.camera[1],
                on_status=on_status,
            )
            source.start()
        except UserError as exc:
            self._emit(self.stopped, run_id, Stop.FAILED, str(exc))
            return
        except Exception as exc:  # OpenCV errors and the like: still one line for the user
            self._emit(
                self.stopped,
                run_id,
                Stop.FAILED,
                f"{spec}: cannot be played ({type(exc).__name__}: {exc}); check it "
                "plays in another player, or pick another source from the Source menu",
            )
            return
        stats = self.stats.new_run(source)
        classifier = FrameClassifier(self.cascade, config=self.config)
        self._classifier = classifier
        classifier.config = self.config  # a change the GUI made meanwhile is not lost
        fleet_sinks = []
        if self.fleet is not None:
            self.fleet.set_source(source.name)
            fleet_sinks = self.fleet.sinks
        sinks = [self.bridge.sink(run_id, stats), *fleet_sinks]
        pipeline = Pipeline(source, classifier, self.overlay, sinks)
        thread = threading.Thread(
            target=self._work, args=(run_id, pipeline), name="waste-vision pipeline", daemon=True
        )
        self._run = Run(run_id, spec, source, pipeline, thread, stats, last_status)
        thread.start()
        self._emit(self.started, run_id, source.name)

    def _work(self, run_id: int, pipeline: Pipeline) -> None:
        """The pipeline thread."""
        try:
            pipeline.run()
        except Exception as exc:
            log.warning("pipeline stopped: %s: %s", type(exc).__name__, exc)
            pipeline.error = exc
        finally:
            self._emit(self._pipelineEnded, run_id)

    def _stop(self) -> None:
        self._finish(self._run, Stop.ASKED, "")

    def _stop_for_good(self) -> None:
        """At exit: the run stopped, then the events written (and sent while the broker
        answers, a few seconds at most) and the metrics server closed."""
        try:
            self._stop()
        finally:
            fleet, self.fleet = self.fleet, None
            if fleet is not None:
                fleet.close()

    def _ended(self, run_id: int) -> None:
        """The pipeline thread of ``run_id`` finished on its own: say why, clean up."""
        run = self._run
        if run is None or run.id != run_id:
            return  # already stopped or switched
        error = run.pipeline.error
        message = run.last_status[0]
        if error is not None:
            self._finish(
                run,
                Stop.ERROR,
                f"classification stopped ({type(error).__name__}: "
                f"{error}); start again with Space, and if it happens again restore "
                "the models folder",
            )
        elif run.source.status is SourceStatus.FAILED:
            self._finish(
                run,
                Stop.FAILED,
                f"{message}; check the source (cable, network, "
                "file) and start it again, or pick another from the Source menu",
            )
        else:
            self._finish(run, Stop.ENDED, message or f"{run.source.name}: ended")

    def _finish(self, run: Run | None, kind: Stop, message: str) -> None:
        if run is None:
            return
        if self._run is run:
            self._run = None
        run.pipeline.stop(timeout=0)  # run via our own thread: this only sets the flag
        run.thread.join(PIPELINE_JOIN_S)
        if run.thread.is_alive():
            log.warning("the pipeline thread is still busy after %.0f s", PIPELINE_JOIN_S)
        run.source.stop()
        if run.recording is not None:
            self._close_recording(run)
        self._emit(self.stopped, run.id, kind, message)

    def _start_recording(self, folder: Path) -> None:
        run = self._run
        if run is None:
            self._emit(
                self.recordingFinished,
                "",
                "nothing is playing, so there is nothing to record; start a source first (Space)",
            )
            return
        if run.recording is not None:
            return
        size = run.source.size or run.stats.frame_size
        if not size:
            self._emit(
                self.recordingFinished,
                "",
                "no picture has arrived yet; wait for the video to show, then record again",
            )
            return
        measured = steady_rate([run.stats.classified])
        fps = (
            (measured if run.source.is_live and measured >= 1 else None)
            or run.source.fps
            or measured
            or 30.0
        )
        if folder.exists() and not folder.is_dir():
            self._emit(
                self.recordingFinished,
                "",
                f"cannot record in {folder}: it is a file, "
                "not a folder; choose another folder (Record > Recording folder…)",
            )
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = unique_path(folder, "waste-vision", ".mp4")
            # what is shown live is recorded with its capture times: plays at real speed
            sink = RecordingSink(
                path, fps, size, jsonl_path=path.with_suffix(".jsonl"), real_time=True
            )
        except UserError as exc:
            self._emit(self.recordingFinished, "", f"{exc}; {FOLDER_HINT}")
            return
        except OSError as exc:
            self._emit(
                self.recordingFinished,
                "",
                f"cannot record in {folder} ({exc.strerror or exc}); {FOLDER_HINT}",
            )
            return
        run.recording = sink
        run.pipeline.sinks.append(sink)
        if self.fleet is not None:
            self.fleet.recording(True)
        self._emit(self.recordingStarted, str(path))

    def _stop_recording(self) -> None:
        run = self._run
        if run is not None and run.recording is not None:
            self._close_recording(run)

    def _close_recording(self, run: Run) -> None:
        sink, run.recording = run.recording, None
        if sink is None:
            return
        if sink in run.pipeline.sinks:
            run.pipeline.sinks.remove(sink)  # the pipeline copies the list per frame
        output = sink.close()
        if self.fleet is not None:
            self.fleet.recording(False)
        error = sink.error or ""
        if output is not None:
            self.saved_recordings.append(str(output))
        self._emit(self.recordingFinished, str(output) if output else "", error)

    # -- GUI thread, internal -----------------------------------------------------------------

    def _on_pipeline_ended(self, run_id: int) -> None:
        if not self._closed:
            self._control.submit(self._ended, run_id)

    def _on_stopped(self, run_id: int, kind: str, message: str) -> None:
        if run_id == self.current_id:
            self.active = False
