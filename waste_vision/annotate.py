"""``waste-vision annotate``: every frame of a video file through the pipeline, as fast as
possible, into an annotated video with the input's frame count, size and FPS, plus a log.

Exit codes: 0 the whole file was annotated; 1 the file is cut or partly unreadable (what
could be read was annotated, and the message says where it stopped); 2 nothing can work (a
missing input, models folder or unwritable output).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from waste_vision.annotators import Overlay
from waste_vision.cascade import Cascade
from waste_vision.errors import UserError
from waste_vision.pipeline import FrameClassifier, Pipeline
from waste_vision.regions import RegionSet, parse_box
from waste_vision.resources import default_models_dir
from waste_vision.sinks import RecordingSink
from waste_vision.sources import Buffering, FileSource


@dataclass
class AnnotateReport:
    frames: int
    expected: int | None
    seconds: float
    output: Path | None
    problem: str | None  # one line when the input was cut or unreadable part-way

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def annotate_video(input_path: Path, output: Path, *, jsonl: Path | None = None,
                   rois: list[str] = (), models: Path | None = None, backend: str = "auto",
                   threads: int = 2, progress: bool = False, int8: bool = False) -> AnnotateReport:
    if not Path(input_path).is_file():
        raise UserError(f"input video {input_path} does not exist; give a video file")
    regions = RegionSet()
    for text in rois:
        regions.add(parse_box(text))
    cascade = Cascade(models or default_models_dir(), backend=backend, threads=threads,
                      int8=int8)
    source = FileSource(input_path, buffering=Buffering.EVERY_FRAME)
    if not source.fps or not source.size:
        raise UserError(f"{input_path}: cannot tell the video's frame rate or size; "
                        "is it a video file?")
    output = Path(output)
    if output.parent and not output.parent.is_dir():
        raise UserError(f"cannot write {output}: folder {output.parent} does not exist")
    sink = RecordingSink(output, source.fps, source.size, jsonl_path=jsonl)
    pipeline = Pipeline(source, FrameClassifier(cascade, regions), Overlay.default(), [sink])
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=source.frame_count or None, unit="frame", file=sys.stderr)
    start = time.monotonic()
    try:
        with source:
            pipeline.run(on_frame=(lambda _r: bar.update(1)) if bar else None)
    finally:
        written = sink.close()
        if bar:
            bar.close()
    seconds = time.monotonic() - start
    problem = None
    if source.truncated_at is not None:
        problem = (f"{input_path}: the file stops being readable at frame "
                   f"{source.truncated_at} of {source.frame_count}; annotated what was readable")
    elif getattr(source, "damaged_frames", 0):
        problem = (f"{input_path}: {source.damaged_frames} damaged frame(s) could not be "
                   "decoded and were left out")
    if sink.error:
        problem = f"recording stopped: {sink.error}"
    return AnnotateReport(pipeline.frames, source.frame_count, seconds, written, problem)


def run_annotate(args) -> int:
    report = annotate_video(args.input, args.output, jsonl=args.jsonl, rois=args.roi,
                            models=args.models, backend=args.backend, threads=args.threads,
                            progress=sys.stderr.isatty() or args.progress, int8=args.int8)
    print(f"annotated {report.frames} frames in {report.seconds:.1f} s "
          f"({report.fps:.1f} FPS) -> {report.output}", file=sys.stderr)
    if report.problem:
        print(f"waste-vision: {report.problem}", file=sys.stderr)
        return 1
    return 0
