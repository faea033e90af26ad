"""``waste-vision annotate``: a source through the pipeline into an annotated H.264 video and a
JSONL log, headless.

The input is any source spec the window takes (``sources.open_source``): a video file, an
image folder or image, a camera index, an ``rtsp://`` / ``http(s)://`` URL.

* A video file: every frame, as fast as possible; the output has the input's frame count,
  size and FPS (``--max-frames`` / ``--duration`` cut it short on purpose).
* A camera or a stream (live): the freshest frame each time (frames the classifier has no
  time for are dropped at the source), each written with its capture time, so the video
  plays at the speed things happened. It runs for ``--duration`` seconds, ``--max-frames``
  frames, or until stopped (Ctrl+C, SIGINT, SIGTERM: the recording and the log are finished
  within 3 s, exit 0). A stream that drops out is retried with the window's reconnect policy;
  one still lost when the run ends gives one line saying when it was lost, and exit 1.

Refused before any work (exit 2, one line): an output (``-o``, ``--jsonl``, ``--summary``)
that is the input (or the ``--empty-scene`` photo), two outputs that are one file, an output
that already exists unless ``--overwrite`` (then the video, the log and the summary are all
replaced: the log is emptied, not appended to, so its lines match the new video), an output
that is a folder, or in a folder that does not exist or cannot be written; a region wholly
outside the first frame; a camera that does not open; a stream that does not answer within
``open_timeout``. Stream URLs are shown with their password as ``***``.

Exit codes: 0 done (or stopped on request); 1 the input was cut, unreadable part-way or
lost, or the recording stopped (what came is kept, the message says where it stopped); 2
nothing can work.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waste_vision.commands.outputs import check_outputs
from waste_vision.engine.fleet import FleetOptions, FleetOutputs
from waste_vision.engine.pipeline import FrameClassifier, Pipeline, PipelineConfig, as_mode
from waste_vision.engine.recorder import check_output
from waste_vision.engine.regions import Zones, ZoneSpec, clamp_box, parse_box
from waste_vision.engine.sinks import RecordingSink
from waste_vision.engine.sources import (
    STREAM_OPEN_TIMEOUT_S,
    FileSource,
    SourceStatus,
    StatusEvent,
    VideoSource,
    open_source,
    parse_camera_size,
)
from waste_vision.errors import UserError
from waste_vision.redact import redact_url

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
FIRST_FRAME_TIMEOUT_S = 10.0  # a file or folder's first frame; live: open_timeout
SOURCE_STOP_TIMEOUT_S = 1.0  # the recording is finished first; a capture thread still
# blocked in a network read after this is left to end with the process


@dataclass
class AnnotateReport:
    frames: int
    expected: int | None
    seconds: float
    output: Path | None
    problem: str | None  # one line when the input was cut, unreadable part-way or lost
    stopped: bool = False  # stopped on request (signal or stop event)
    live: bool = False
    skipped: int = 0  # live frames the encoder had no time for (the video keeps its timing)
    summary: dict | None = None  # {"tally": {label: n}, "items": [...]}: what was counted
    crops_classified: int = 0  # crops run through the models
    crops_reused: int = 0  # crops whose last result was kept (unchanged; reuse.py)
    events: int | None = None  # rows written to the events database (None: none kept)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# -- the frame stage: what happens to a frame between the source and the recording ----------


def build_frame_stage(
    *,
    models: Path | None,
    backend: str,
    threads: int,
    int8: bool,
    zones: Zones = (),
    find: str = "items",
    explain: bool = False,
    empty_scene: np.ndarray | None = None,
    reuse: bool = True,
    profile: Path | None = None,
):
    """The classifier and the overlay every frame goes through: items found against the
    empty scene (``find="items"``; learnt from ``empty_scene`` when given, else from the
    first frames) or the whole frame (``find="frame"``); ``zones`` (drawn regions) take
    precedence. ``reuse=False``: every crop classified, none kept while unchanged
    (``reuse.py``). The configuration is built here once, for the whole run."""
    from waste_vision.engine.annotators import Overlay
    from waste_vision.model.cascade import Cascade
    from waste_vision.resources import default_models_dir

    cascade = Cascade(models or default_models_dir(), backend=backend, threads=threads, int8=int8)
    if profile is not None:
        from waste_vision.model.profile import attach

        attach(cascade, profile)
    config = PipelineConfig(as_mode(find), reuse=reuse, explain=explain, zones=zones)
    classifier = FrameClassifier(cascade, config=config)
    if empty_scene is not None:
        classifier.scene.learn_from(empty_scene)
    return classifier, Overlay.default()


def read_empty_scene(path: Path | None, size: tuple[int, int]) -> np.ndarray | None:
    """The photo of the empty view given with ``--empty-scene``, at the frames' size."""
    if path is None:
        return None
    from waste_vision.images import ImageReadError, read_rgb

    try:
        rgb = read_rgb(Path(path))
    except (ImageReadError, OSError) as exc:
        raise UserError(f"--empty-scene {path}: {exc}; give a photo of the empty view") from None
    if (rgb.shape[1], rgb.shape[0]) != size:
        import cv2

        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return rgb


# -- checks made before any work ------------------------------------------------------------


def _check_outputs(output: Path, jsonl: Path | None) -> Path:
    """Each output on its own: a file name in a folder that can be written."""
    output = check_output(output)
    if jsonl is not None:
        jsonl = Path(jsonl).expanduser()
        if jsonl.resolve() == output.resolve():
            raise UserError(
                f"--jsonl {jsonl} is the video output too; give the log "
                "another name, e.g. " + str(output.with_suffix(".jsonl"))
            )
        if jsonl.is_dir():
            raise UserError(f"cannot write the log {jsonl}: it is a folder; give a file name")
        if not jsonl.parent.is_dir():
            raise UserError(
                f"cannot write the log {jsonl}: folder {jsonl.parent} does not "
                "exist; create it or choose another path"
            )
    return output


def _check_limits(duration: float | None, max_frames: int | None) -> None:
    if duration is not None and not duration > 0:
        raise UserError(f"--duration {duration}: give a number of seconds above 0")
    if max_frames is not None and max_frames < 1:
        raise UserError(f"--max-frames {max_frames}: give a number of frames of 1 or more")


def _parse_regions(rois, track: bool) -> tuple[Zones, list[tuple[str, tuple]]]:
    """``--roi`` texts -> the zones (following their items with ``--track``), and each
    text with its box for ``_check_regions``."""
    boxes = [(text, parse_box(text)) for text in rois]
    return tuple(ZoneSpec(box, track) for _, box in boxes), boxes


def _check_regions(boxes, size: tuple[int, int], name: str) -> None:
    w, h = size
    for text, box in boxes:
        if clamp_box(box, w, h) is None:
            raise UserError(
                f"region {text} lies outside the {w}x{h} frame of {name}; give "
                f"x,y,w,h inside 0,0,{w},{h}"
            )


# -- the run --------------------------------------------------------------------------------


class _LiveWatch:
    """Status events of a live source: when it was lost and whether it came back."""

    def __init__(self):
        self.lost_at: float | None = None  # wall clock, while lost
        self.lost_reason = ""
        self.losses = 0

    def __call__(self, event: StatusEvent) -> None:  # capture thread: quick
        if event.status is SourceStatus.RECONNECTING and self.lost_at is None:
            self.lost_at = time.time()
            self.lost_reason = event.message.split(";")[0]
            self.losses += 1
        elif event.status is SourceStatus.RUNNING:
            self.lost_at = None


def _input_path(spec: str) -> Path | None:
    """The input as a file or folder, when it is one (not a camera index or a URL)."""
    if "://" in spec:
        return None
    path = Path(spec).expanduser()
    return path if path.exists() else None


def _source_problem(source: VideoSource, name: str) -> str | None:
    """A video file cut short or with undecodable frames (only files have either)."""
    if not isinstance(source, FileSource):
        return None
    if source.truncated_at is not None:
        return (
            f"{name}: the file stops being readable at frame {source.truncated_at} of "
            f"{source.frame_count}; annotated what was readable"
        )
    if source.damaged_frames:
        return (
            f"{name}: {source.damaged_frames} damaged frame(s) could not be decoded and "
            "were left out"
        )
    return None


def annotate_video(
    input_path,
    output: Path,
    *,
    jsonl: Path | None = None,
    rois: Sequence[str] = (),
    models: Path | None = None,
    backend: str = "auto",
    threads: int = 2,
    progress: bool = False,
    int8: bool = False,
    duration: float | None = None,
    max_frames: int | None = None,
    stop: threading.Event | None = None,
    open_timeout: float = STREAM_OPEN_TIMEOUT_S,
    find: str = "items",
    track: bool = False,
    explain: bool = False,
    empty_scene: Path | None = None,
    summary: Path | None = None,
    camera_size: str | None = None,
    camera_fps: float | None = None,
    classify_every_frame: bool = False,
    overwrite: bool = False,
    profile: Path | None = None,
    fleet_options: FleetOptions | None = None,
) -> AnnotateReport:
    """Annotate ``input_path`` (any source spec) into ``output``; see the module docstring.

    ``stop`` (an Event) ends a run early, as a signal does from the command line.
    ``overwrite``: replace existing outputs (never an input) instead of refusing them.
    ``fleet_options`` (``fleet.FleetOptions``; None: none of them): each counted item
    also becomes a row of an events database (appended to), published to an MQTT broker
    (which needs the database), and Prometheus metrics served on a port.
    """
    stop = stop or threading.Event()
    fleet_options = fleet_options or FleetOptions()
    events = fleet_options.events
    spec = str(input_path)
    jsonl = Path(jsonl).expanduser() if jsonl is not None else None
    # first of all, before any file is opened: nothing the user has is written over
    check_outputs(
        {"-o": Path(output), "--jsonl": jsonl, "--summary": summary},
        {"the input": _input_path(spec), "the --empty-scene photo": empty_scene},
        overwrite=overwrite,
    )
    if events is not None:  # appended to by design: checked against the rest only
        check_outputs(
            {"-o": Path(output), "--jsonl": jsonl, "--summary": summary, "--events": events},
            {"the input": _input_path(spec), "the --empty-scene photo": empty_scene},
            overwrite=None,
        )
    # before any work: the events kept, paho there, the URL and the password readable
    fleet_options.check()
    output = _check_outputs(Path(output), jsonl)
    _check_limits(duration, max_frames)
    zones, boxes = _parse_regions(rois, track)
    if summary is not None:
        summary = Path(summary).expanduser()
        if summary.is_dir() or not summary.parent.is_dir():
            raise UserError(
                f"cannot write the summary {summary}: "
                + (
                    "it is a folder; give a file name"
                    if summary.is_dir()
                    else f"folder {summary.parent} does not exist; create it or choose another path"
                )
            )
    watch = _LiveWatch()
    fleet = FleetOutputs()  # events, MQTT, metrics: opened once the models are loaded

    def on_status(event: StatusEvent) -> None:  # the capture thread
        watch(event)
        fleet.status(event)

    size = parse_camera_size(camera_size) if camera_size else None
    source = open_source(
        spec,
        on_status=on_status,
        open_timeout=open_timeout,
        camera_size=size,
        camera_fps=camera_fps,
    )
    live = source.is_live
    if not live and getattr(source, "frame_count", None) and not source.fps:
        raise UserError(
            f"{redact_url(spec)}: cannot tell the video's frame rate; is it a video file?"
        )
    sink = None
    try:
        source.start()  # UserError: a camera or stream that does not open
        first = source.read(timeout=open_timeout if live else FIRST_FRAME_TIMEOUT_S)
        if first is None:
            if stop.is_set():
                raise UserError(f"{source.name}: stopped before the first frame arrived", 1)
            wait = open_timeout if live else FIRST_FRAME_TIMEOUT_S
            raise UserError(
                f"{source.name}: no frame arrived within {wait:g} s; check that "
                "it is a working video source"
            )
        size = (first.image.shape[1], first.image.shape[0])
        _check_regions(boxes, size, source.name)
        # a slideshow read headless shows each image for 2 s, as the window does
        fps = source.fps or (30.0 if live else 0.5)
        classifier, overlay = build_frame_stage(
            models=models,
            backend=backend,
            threads=threads,
            int8=int8,
            zones=zones,
            find=find,
            explain=explain,
            empty_scene=read_empty_scene(empty_scene, size),
            reuse=not classify_every_frame,
            profile=profile,
        )
        fleet.open(classifier.cascade, source.name, fleet_options)
        sink = RecordingSink(output, fps, size, jsonl_path=jsonl, real_time=live)
        fleet.recording(True)
        pipeline = Pipeline(source, classifier, overlay, [sink, *fleet.sinks])
        # a live source's first frame is stale by the time the models are loaded: start
        # from a fresh one, so the video does not open on a frozen second
        report = _run(
            pipeline,
            source,
            None if live else first,
            live=live,
            fps=fps,
            duration=duration,
            max_frames=max_frames,
            stop=stop,
            progress=progress,
        )
    finally:
        if sink is not None:
            sink.close()  # before the source: a stream's stop may wait for a network read
            fleet.recording(False)
        fleet.close()  # the events queued are written (and sent, while the broker answers)
        source.stop(timeout=SOURCE_STOP_TIMEOUT_S)
    report.output = sink.output
    report.skipped = sink.frames_skipped
    report.events = fleet.events_written
    report.summary = classifier.summary()
    if classifier.reuse is not None:
        report.crops_classified = classifier.reuse.classified
        report.crops_reused = classifier.reuse.reused
    if summary is not None:
        try:
            summary.write_text(json.dumps(report.summary, indent=2) + "\n")
        except OSError as exc:
            raise UserError(f"cannot write the summary {summary}: {exc.strerror}") from None
    problem = _source_problem(source, redact_url(spec))
    if live and watch.lost_at is not None:
        lost = time.strftime("%H:%M:%S", time.localtime(watch.lost_at))
        why = watch.lost_reason.split(": ", 1)[-1]
        problem = (
            f"{source.name}: stream lost at {lost} ({why}) and not back when the run "
            f"ended; kept the {report.frames} frames recorded before"
        )
    elif live and source.status is SourceStatus.FAILED:
        problem = f"{source.name}: the source failed; kept the {report.frames} frames recorded"
    if sink.error:
        kept = f"; what was recorded before is in {sink.output}" if sink.output else ""
        problem = f"recording stopped: {sink.error}{kept}"
    report.problem = problem
    return report


def _run(
    pipeline: Pipeline,
    source: VideoSource,
    first,
    *,
    live: bool,
    fps: float,
    duration: float | None,
    max_frames: int | None,
    stop: threading.Event,
    progress: bool,
) -> AnnotateReport:
    bar = None
    if progress:
        from tqdm import tqdm

        total = getattr(source, "frame_count", None)
        if max_frames:
            total = min(total or max_frames, max_frames)
        bar = tqdm(total=None if live else total, unit="frame", file=sys.stderr)

    def on_frame(_result) -> None:
        if bar is not None:
            bar.update(1)
        enough = max_frames is not None and pipeline.frames >= max_frames
        timed_out = duration is not None and not live and pipeline.frames >= duration * fps - 1e-6
        if enough or timed_out:
            pipeline.stop(timeout=0)

    done = threading.Event()
    start = time.monotonic()

    def watcher() -> None:
        """Ends the run on a stop request or, for a live source, when the time is up (also
        while the stream is away and no frame calls on_frame)."""
        deadline = start + duration if (live and duration is not None) else None
        while not done.is_set():
            left = None if deadline is None else deadline - time.monotonic()
            if stop.is_set() or (left is not None and left <= 0):
                pipeline.stop(timeout=0)
                return
            stop.wait(0.05 if left is None else min(0.05, left))

    thread = threading.Thread(target=watcher, name="annotate stop", daemon=True)
    thread.start()
    try:
        if first is not None and not stop.is_set():
            pipeline.step(first)
            on_frame(None)
        pipeline.run(on_frame=on_frame)
    finally:
        done.set()
        if bar is not None:
            bar.close()
    return AnnotateReport(
        pipeline.frames,
        getattr(source, "frame_count", None),
        time.monotonic() - start,
        None,
        None,
        stopped=stop.is_set(),
        live=live,
    )


def run_annotate(args) -> int:
    quiet = getattr(args, "quiet", 0) > getattr(args, "verbose", 0)
    stop = threading.Event()

    def on_signal(signum, _frame):
        stop.set()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        report = annotate_video(
            args.input,
            args.output,
            jsonl=args.jsonl,
            rois=args.roi,
            models=args.models,
            backend=args.backend,
            threads=args.threads,
            int8=args.int8,
            profile=getattr(args, "profile", None),
            fleet_options=FleetOptions.from_args(args),
            progress=(sys.stderr.isatty() or args.progress) and not quiet,
            duration=getattr(args, "duration", None),
            max_frames=getattr(args, "max_frames", None),
            stop=stop,
            open_timeout=getattr(args, "open_timeout", STREAM_OPEN_TIMEOUT_S),
            find=args.find,
            track=args.track,
            explain=args.explain,
            empty_scene=args.empty_scene,
            summary=args.summary,
            camera_size=args.camera_size,
            camera_fps=args.camera_fps,
            classify_every_frame=getattr(args, "classify_every_frame", False),
            overwrite=getattr(args, "overwrite", False),
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    how = "recorded" if report.live else "annotated"
    if report.stopped:
        how = f"stopped on request: {how}"
    events = "" if report.events is None else f"; {report.events} event(s) kept"
    skipped = (
        f"; {report.skipped} frame(s) skipped while the encoder was behind"
        if report.skipped
        else ""
    )
    if not quiet:
        print(
            f"{how} {report.frames} frames in {report.seconds:.1f} s "
            f"({report.fps:.1f} FPS) -> {report.output}{skipped}{events}",
            file=sys.stderr,
        )
    if report.summary is not None:
        print(json.dumps(report.summary))  # stdout: the counts, for a script to read
    if report.problem:
        print(f"waste-vision: {redact_url(report.problem)}", file=sys.stderr)
        return 1
    return 0
