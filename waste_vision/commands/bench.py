"""``waste-vision bench``: measured speed, in one run, against the original project's loop.

1. Per-stage inference ms (p50/p95) for every backend that is installed.
2. ``annotate`` end to end on the bundled clip (decode, classify, overlay, encode): FPS.
3. Live: the clip paced at its own 30 FPS through the pipeline in a worker thread, latest
   frame wins: classified FPS and capture -> overlay latency p50/p95.
4. The original project's loop on the same models and frames: one thread, Keras
   ``model.predict`` per frame per stage, ``cv2.putText``, ``VideoWriter`` — and the ratio.
"""

from __future__ import annotations

import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from waste_vision.errors import UserError
from waste_vision.images import resize_for_model
from waste_vision.model.cascade import Cascade
from waste_vision.model.keras_backend import KerasModel, load_keras_model
from waste_vision.model.litert_backend import LiteRTModel
from waste_vision.model.manifest import StageSpec, load_manifest
from waste_vision.resources import default_assets_dir, default_models_dir


def _percentiles(ms: list[float]) -> dict:
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "runs": len(ms),
    }


def _time_calls(fn, x: np.ndarray, runs: int) -> dict:
    for _ in range(5):
        fn(x)
    ms = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(x)
        ms.append((time.perf_counter() - start) * 1000)
    return _percentiles(ms)


def _keras_file(stage: StageSpec) -> Path:
    if stage.keras is None:
        raise UserError(f"stage {stage.name!r} has no .keras model in the manifest")
    return stage.keras


def bench_stages(models: Path, threads: int, runs: int) -> dict:
    manifest = load_manifest(models)
    x = (
        np.random.default_rng(0)
        .uniform(0, 255, (*manifest.stages[0].input_size, 3))
        .astype(np.float32)
    )
    out: dict[str, dict[str, Any]] = {
        "litert": {
            s.name: _time_calls(LiteRTModel(s.tflite, threads), x, runs)
            for s in manifest.stages
            if s.tflite is not None
        }
    }
    for name, path in (
        ("fused", manifest.fused_tflite),
        ("fused int8", manifest.fused_int8_tflite),
    ):
        if path:
            out["litert"][name] = _time_calls(LiteRTModel(path, threads), x, runs)
    try:
        keras_models = {s.name: KerasModel(_keras_file(s)) for s in manifest.stages}
    except UserError as exc:
        out["keras"] = {"unavailable": str(exc)}
    else:
        out["keras"] = {
            name: _time_calls(m, x, max(runs // 4, 10)) for name, m in keras_models.items()
        }
    return out


def bench_annotate(
    clip: Path,
    models: Path,
    threads: int,
    int8: bool = False,
    find: str = "frame",
    rois: Sequence[str] = (),
    track: bool = False,
    every_frame: bool = False,
    max_frames: int | None = None,
) -> dict:
    """``annotate`` of ``clip`` (its first ``max_frames``, None: all); ``every_frame``: no
    result reused (--classify-every-frame)."""
    from waste_vision.commands.annotate import annotate_video

    with tempfile.TemporaryDirectory() as tmp:
        report = annotate_video(
            clip,
            Path(tmp) / "out.mp4",
            models=models,
            threads=threads,
            int8=int8,
            find=find,
            rois=list(rois),
            track=track,
            classify_every_frame=every_frame,
            max_frames=max_frames,
        )
    out = {
        "frames": report.frames,
        "seconds": round(report.seconds, 3),
        "fps": round(report.fps, 2),
    }
    crops = report.crops_classified + report.crops_reused
    if crops:
        out["crops_reused"] = round(report.crops_reused / crops, 3)
    return out


TWO_ZONES = ["160,120,400,400", "720,120,400,400"]  # two 400x400 zones in a 720p frame


def bench_regions(
    clip: Path, models: Path, threads: int, every_frame: bool = False, max_frames: int | None = None
) -> dict:
    """``annotate`` of the 720p demo clip with no region (whole frame), two fixed zones, two
    tracked zones and item finding, in one run, so the ratios hold on a busy machine.
    ``every_frame``: every crop classified (no result reused, as --classify-every-frame)."""

    def run(**kw) -> dict:
        return bench_annotate(
            clip, models, threads, every_frame=every_frame, max_frames=max_frames, **kw
        )

    out: dict[str, Any] = {
        "no_region": run(),
        "two_zones": run(rois=TWO_ZONES),
        "two_tracked": run(rois=TWO_ZONES, track=True),
    }
    base = out["no_region"]["fps"]
    for key in ("two_zones", "two_tracked"):
        out[f"{key}_vs_no_region"] = round(out[key]["fps"] / base, 2) if base else None
    out["items"] = run(find="items")
    out["items_vs_no_region"] = round(out["items"]["fps"] / base, 2) if base else None
    return out


def bench_live(
    clip: Path,
    models: Path,
    threads: int,
    seconds: float,
    rois: Sequence[str] = (),
    track: bool = False,
    find: str = "frame",
    explain: bool = False,
    every_frame: bool = False,
) -> dict:
    from waste_vision.engine.annotators import Overlay
    from waste_vision.engine.pipeline import FrameClassifier, Pipeline, PipelineConfig, as_mode
    from waste_vision.engine.sources import Buffering, FileSource

    cascade = Cascade(models, backend="litert", threads=threads)
    source = FileSource(clip, buffering=Buffering.LATEST, paced=True, loop=True)
    latencies: list[float] = []

    def on_frame(result):
        latencies.append((time.monotonic() - result.frame.timestamp) * 1000)

    from waste_vision.engine.regions import ZoneSpec, parse_box

    zones = tuple(ZoneSpec(parse_box(text), track) for text in rois)
    config = PipelineConfig(as_mode(find), reuse=not every_frame, explain=explain, zones=zones)
    classifier = FrameClassifier(cascade, config=config)
    pipeline = Pipeline(source, classifier, Overlay.default())
    with source:
        pipeline.start(on_frame)
        time.sleep(seconds)
        pipeline.stop()
    warm = latencies[10:] or latencies
    return {
        "source_fps": source.fps,
        "seconds": seconds,
        "classified_fps": round(len(latencies) / seconds, 2),
        "dropped_frames": source.dropped,
        "latency": _percentiles(warm),
    }


def bench_original_loop(clip: Path, models: Path, frames: int) -> dict:
    """The original project's display loop, headless: predict() per frame per stage."""
    s1, s2 = load_manifest(models).stages
    stage1 = load_keras_model(_keras_file(s1))
    stage2 = load_keras_model(_keras_file(s2))
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    with tempfile.TemporaryDirectory() as tmp:
        out = cv2.VideoWriter(
            os.path.join(tmp, "orig.mp4"), cv2.VideoWriter.fourcc(*"mp4v"), fps, size
        )
        stage1.predict(np.zeros((1, *s1.input_size, 3), np.float32), verbose=0)  # warm up
        start = time.perf_counter()
        done = 0
        while done < frames:
            ok, bgr = cap.read()
            if not ok:
                break
            x = resize_for_model(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), s1.input_size)[None]
            p = float(stage1.predict(x, verbose=0)[0, 0])
            label = "organic"
            if p >= s1.threshold:
                label = s2.labels[int(np.argmax(stage2.predict(x, verbose=0)[0]))]
            cv2.putText(bgr, label, (20, 60), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 255, 0), 3)
            out.write(bgr)
            done += 1
        seconds = time.perf_counter() - start
        out.release()
    cap.release()
    return {"frames": done, "seconds": round(seconds, 3), "fps": round(done / seconds, 2)}


def rss_mb() -> float:
    """Current resident memory of this process (Linux; 0 where /proc is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def run_bench(args) -> int:
    models = Path(args.models or default_models_dir())
    clip = Path(args.clip or default_assets_dir() / "demo.mp4")
    if not clip.is_file():
        raise UserError(f"bench clip {clip} does not exist; pass --clip VIDEO")
    if args.json is not None:  # checked now, not after minutes of measuring
        from waste_vision.commands.outputs import check_outputs

        json_path = Path(args.json).expanduser()
        check_outputs(
            {"--json": json_path},
            {"the --clip video": clip, "the models' manifest": models / "cascade.json"},
            overwrite=None,
        )
        if json_path.is_dir() or not json_path.parent.is_dir():
            raise UserError(
                f"cannot write --json {json_path}: "
                + (
                    "it is a folder; give a file name"
                    if json_path.is_dir()
                    else f"folder {json_path.parent} does not exist; create it or choose another path"
                )
            )
    quiet = getattr(args, "quiet", 0) > getattr(args, "verbose", 0)

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr)

    if not args.skip_original and importlib.util.find_spec("keras") is None:
        # the original loop runs the .keras models (absent from the frozen bundle)
        print(
            "waste-vision: Keras is not installed (or not in this bundle): "
            "skipping the original loop",
            file=sys.stderr,
        )
        args.skip_original = True
    results: dict = {"cpu_count": os.cpu_count(), "threads": args.threads}
    say("annotate end to end ...")
    frames = args.max_frames
    results["annotate"] = bench_annotate(clip, models, args.threads, max_frames=frames)
    if load_manifest(models).fused_int8_tflite:
        results["annotate_int8"] = bench_annotate(
            clip, models, args.threads, int8=True, max_frames=frames
        )
    say(f"live, {args.live_seconds:.0f} s ...")
    results["live"] = bench_live(clip, models, args.threads, args.live_seconds)
    say("regions and item finding ...")
    results["regions"] = bench_regions(clip, models, args.threads, max_frames=frames)
    results["regions_every_frame"] = bench_regions(
        clip, models, args.threads, every_frame=True, max_frames=frames
    )
    results["live_two_tracked"] = bench_live(
        clip, models, args.threads, args.live_seconds, rois=TWO_ZONES, track=True
    )
    results["live_two_tracked_every_frame"] = bench_live(
        clip, models, args.threads, args.live_seconds, rois=TWO_ZONES, track=True, every_frame=True
    )
    results["live_items"] = bench_live(clip, models, args.threads, args.live_seconds, find="items")
    results["live_items_explain"] = bench_live(
        clip, models, args.threads, args.live_seconds, find="items", explain=True
    )
    # before anything imports TensorFlow: what the app and annotate need
    results["rss_before_tensorflow_mb"] = rss_mb()
    say("per-stage inference ...")
    results["stages"] = bench_stages(models, args.threads, args.runs)
    if not args.skip_original:
        say(f"original loop, {args.original_frames} frames ...")
        results["original_loop"] = bench_original_loop(clip, models, args.original_frames)
        for key in ("annotate", "annotate_int8"):
            if key in results:
                results[f"{key}_vs_original"] = round(
                    results[key]["fps"] / results["original_loop"]["fps"], 1
                )
    results["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(format_results(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


def format_results(r: dict) -> str:
    lines = [f"waste-vision bench — {r['cpu_count']} CPUs, {r['threads']} inference threads"]
    for backend, stages in r["stages"].items():
        for name, t in stages.items():
            if name == "unavailable":
                lines.append(f"  {backend:<7} unavailable: {t}")
            else:
                lines.append(
                    f"  {backend:<7} {name:<20} p50 {t['p50_ms']:7.2f} ms   "
                    f"p95 {t['p95_ms']:7.2f} ms"
                )
    a, live = r["annotate"], r["live"]
    lines.append(f"  annotate  {a['frames']} frames in {a['seconds']:.2f} s = {a['fps']:.1f} FPS")
    if "annotate_int8" in r:
        a8 = r["annotate_int8"]
        lines.append(
            f"  annotate --int8  {a8['frames']} frames in {a8['seconds']:.2f} s = "
            f"{a8['fps']:.1f} FPS"
        )
    lines.append(
        f"  live      {live['classified_fps']:.1f} classified FPS from a "
        f"{live['source_fps']:.0f} FPS source, latency p50 "
        f"{live['latency']['p50_ms']:.1f} ms p95 {live['latency']['p95_ms']:.1f} ms, "
        f"{live['dropped_frames']} dropped"
    )
    for key, how in (("regions", ""), ("regions_every_frame", ", every frame classified")):
        if key not in r:
            continue
        g = r[key]
        lines.append(
            f"  regions{how}: no region {g['no_region']['fps']:.1f} FPS, two zones "
            f"{g['two_zones']['fps']:.1f} ({g['two_zones_vs_no_region']}x), two "
            f"tracked {g['two_tracked']['fps']:.1f} ({g['two_tracked_vs_no_region']}x)"
            f", finding items {g['items']['fps']:.1f} ({g['items_vs_no_region']}x)"
        )
    for key, what in (
        ("live_two_tracked", "two tracked regions"),
        ("live_two_tracked_every_frame", "two tracked regions, every frame"),
        ("live_items", "finding items"),
        ("live_items_explain", "finding items, heat maps shown"),
    ):
        if key in r:
            lv = r[key]
            lines.append(
                f"  live, {what}: {lv['classified_fps']:.1f} classified FPS, latency "
                f"p50 {lv['latency']['p50_ms']:.1f} ms p95 "
                f"{lv['latency']['p95_ms']:.1f} ms"
            )
    if "original_loop" in r:
        o = r["original_loop"]
        lines.append(
            f"  original  {o['frames']} frames in {o['seconds']:.2f} s = "
            f"{o['fps']:.2f} FPS (model.predict per frame, one thread)"
        )
        lines.append(
            f"  annotate is {r['annotate_vs_original']}x the original loop"
            + (
                f", annotate --int8 {r['annotate_int8_vs_original']}x"
                if "annotate_int8_vs_original" in r
                else ""
            )
        )
    lines.append(
        f"  RSS {r['rss_before_tensorflow_mb']:.0f} MB before TensorFlow is imported "
        f"(LiteRT pipeline), peak {r['peak_rss_mb']:.0f} MB with the Keras runs"
    )
    return "\n".join(lines)
