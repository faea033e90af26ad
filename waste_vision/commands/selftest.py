"""``waste-vision --self-test``: is this installation (or frozen bundle) able to do its job?

Loads the shipped models with LiteRT, classifies the sample photos in ``assets/samples/``
(each file name starts with its class: ``glass_trashnet_glass102.jpg`` is glass; chosen by
the rule in ``tools/pick_samples.py``, not by what a model gets right) and reads a few
frames of the demo clip. The samples pass when at least ``SAMPLE_FLOOR`` of them come out
right: a working model misses one now and then, a broken one misses most. One line per check, with a tick or a cross
and its time, then a summary line; exit code 0 when every check passed, else 1.
Every step is a plain function so it can be tested without a bundle.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from waste_vision.errors import UserError

CLASSES = ("organic", "cardboard", "glass", "metal", "paper", "plastic")
DEMO_FRAMES = 10
SAMPLE_FLOOR = 0.75  # fraction of the sample photos that must come out right


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


def expected_label(path: Path) -> str | None:
    """The class a sample's file name starts with (``paper125.jpg`` -> paper), else None."""
    stem = Path(path).stem.lower()
    for name in CLASSES:
        if stem.startswith(name):
            return name
    return None


def _timed(name: str, fn: Callable[[], tuple[bool, str]]) -> Check:
    start = time.perf_counter()
    try:
        ok, detail = fn()
    except UserError as exc:
        ok, detail = False, str(exc)
    except Exception as exc:  # a self-test reports, it does not crash
        ok, detail = False, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    return Check(name, ok, time.perf_counter() - start, detail)


def check_models(models_dir: Path, threads: int = 2):
    """(Check, cascade or None): the manifest and every model load on LiteRT, and run once."""
    holder = {}

    def load():
        import numpy as np

        from waste_vision.model.cascade import Cascade

        cascade = Cascade(Path(models_dir), backend="litert", threads=threads)
        cascade.classify(np.zeros((64, 64, 3), np.uint8))  # warm-up, as the app does
        holder["cascade"] = cascade
        names = [s.tflite.name for s in cascade.manifest.stages if s.tflite is not None]
        fused = cascade.manifest.fused_tflite
        if cascade.uses_fused and fused is not None:
            names.append(fused.name)
        return True, f"LiteRT, {', '.join(names)} from {models_dir}"

    return _timed("models load", load), holder.get("cascade")


def classify_sample(cascade, path: Path) -> str | None:
    """Why the sample is not right ("said glass, expected metal"), or None when it is."""
    from waste_vision.images import read_rgb

    expected = expected_label(path)
    if expected is None:
        return f"{Path(path).name}: file name names no class ({', '.join(CLASSES)})"
    try:
        result = cascade.classify(read_rgb(path))
    except UserError as exc:
        return str(exc)
    if result.label != expected:
        return f"{Path(path).name} said {result.label} ({result.score:.2f}), expected {expected}"
    return None


def check_samples(cascade, samples_dir: Path) -> Check:
    """The sample photos classified; passes when at least ``SAMPLE_FLOOR`` are right."""
    from waste_vision.images import iter_image_files

    def run():
        folder = Path(samples_dir)
        files = list(iter_image_files(folder)) if folder.is_dir() else []
        if not files:
            return False, f"no sample photos in {folder}"
        misses = [m for m in (classify_sample(cascade, f) for f in files) if m]
        right, floor = len(files) - len(misses), math.ceil(SAMPLE_FLOOR * len(files))
        detail = f"{right} of {len(files)} photos right (floor {floor})"
        return right >= floor, "; ".join([detail, *misses])

    return _timed("samples", run)


def check_video(path: Path, cascade=None, frames: int = DEMO_FRAMES) -> Check:
    """The demo clip opens and ``frames`` frames decode (and classify, given a cascade)."""

    def run():
        import cv2

        if not Path(path).is_file():
            return False, f"{path} is missing"
        cap = cv2.VideoCapture(str(path))
        try:
            if not cap.isOpened():
                return False, f"{path} does not open (no video decoder?)"
            got, shape = 0, None
            for _ in range(frames):
                ok, bgr = cap.read()
                if not ok:
                    break
                got, shape = got + 1, bgr.shape
                if cascade is not None:
                    cascade.classify(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        finally:
            cap.release()
        if got < frames or shape is None:
            return False, f"read {got} of {frames} frames from {path}"
        what = "read and classified" if cascade is not None else "read"
        return True, f"{got} frames {shape[1]}x{shape[0]} {what}"

    return _timed(f"demo clip {Path(path).name}", run)


def run_checks(models_dir: Path, assets_dir: Path) -> list[Check]:
    models_check, cascade = check_models(models_dir)
    checks = [models_check]
    if cascade is None:
        checks.append(Check("samples", False, 0.0, "skipped: the models did not load"))
    else:
        checks.append(check_samples(cascade, Path(assets_dir) / "samples"))
    checks.append(check_video(Path(assets_dir) / "demo.mp4", cascade))
    return checks


def _marks(out: TextIO) -> tuple[str, str]:
    encoding = getattr(out, "encoding", None) or "utf-8"  # StringIO: any text
    try:
        "✓✗".encode(encoding)
        return "✓", "✗"
    except (UnicodeEncodeError, LookupError):
        return "OK", "FAIL"


def where() -> str:
    bundle = getattr(sys, "_MEIPASS", None)
    return f"frozen bundle {bundle}" if bundle else f"Python {sys.version.split()[0]}"


def format_report(checks: list[Check], total_s: float, out: TextIO) -> str:
    good, bad = _marks(out)
    width = max(len(c.name) for c in checks)
    lines = [
        f"{good if c.ok else bad} {c.name:<{width}} {c.seconds * 1000:8.1f} ms  {c.detail}"
        for c in checks
    ]
    failed = sum(not c.ok for c in checks)
    verdict = "all passed" if not failed else f"{failed} FAILED"
    lines.append(f"self-test: {len(checks)} checks, {verdict}, {total_s:.2f} s")
    return "\n".join(lines)


def run_selftest(
    models_dir: Path | None = None, assets_dir: Path | None = None, out: TextIO | None = None
) -> int:
    """Run every check, print the one-screen report; 0 when all passed, else 1."""
    from waste_vision import __version__
    from waste_vision.resources import default_assets_dir, default_models_dir

    out = out or sys.stdout
    start = time.perf_counter()
    models_dir = Path(models_dir) if models_dir is not None else default_models_dir()
    assets_dir = Path(assets_dir) if assets_dir is not None else default_assets_dir()
    print(f"waste-vision {__version__} self-test ({where()})", file=out)
    checks = run_checks(models_dir, assets_dir)
    print(format_report(checks, time.perf_counter() - start, out), file=out, flush=True)
    return 0 if all(c.ok for c in checks) else 1
