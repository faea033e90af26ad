"""Int8 fused cascade: quantize, measure the accuracy change on validation, adopt only if small.

The fused model's trunk pass is most of a frame's CPU time; full-integer weights and
activations (calibrated on training photos) roughly halve it under XNNPACK. EfficientNet-Lite
was designed for this (ReLU6, no squeeze-excite), but the loss is measured, not assumed: the
int8 model replaces the float16 one (file and ``cascade.json`` entry) only when neither stage loses more
than ``--max-drop`` points of validation accuracy. The figures go to
``models/reports/fused_int8.json``.

    python -m waste_vision.training.quantize --models models \\
        --calibration work/or-split2/TRAIN work/trashnet-split/TRAIN \\
        --stage1-val work/or-split2/VALIDATION --stage2-val work/trashnet-split/VALIDATION
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from waste_vision.cascade import _LiteRTModel
from waste_vision.images import ImageReadError, iter_image_files, read_rgb, resize_for_model
from waste_vision.manifest import load_manifest
from waste_vision.training.data import STAGE_LABELS, class_folders
from waste_vision.training.export import export_tflite
from waste_vision.training.fuse import FUSED_FILE, fused_model

INT8_FILE = "cascade_fused_int8.tflite"


def _inputs(paths: list[Path], size: tuple[int, int]):
    for path in paths:
        try:
            yield path, resize_for_model(read_rgb(path), size)
        except ImageReadError:
            continue


def export_int8(model, out: Path, calibration: list[Path], size: tuple[int, int]) -> Path:
    """Write the fused model with int8 weights and activations (float32 in and out)."""
    import tensorflow as tf

    def representative():
        for _path, x in _inputs(calibration, size):
            yield [x[None]]

    model.export(str(out), format="litert", verbose=False,
                 optimizations=[tf.lite.Optimize.DEFAULT],
                 representative_dataset=representative)
    return out


def fused_accuracy(tflite: Path, threshold: float, stage1: tuple[list, list],
                   stage2: tuple[list, list], size) -> dict:
    """Stage-1 accuracy at the shipped threshold and stage-2 accuracy, from one fused model."""
    model = _LiteRTModel(tflite, threads=2)
    out = {}
    for name, (paths, labels) in (("stage1", stage1), ("stage2", stage2)):
        correct = total = 0
        for (path, x), y in zip(_inputs(paths, size), labels):
            p1, p2 = model(x)
            guess = int(p1.reshape(-1)[0] >= threshold) if name == "stage1" else int(p2.argmax())
            correct += guess == y
            total += 1
        out[name] = round(correct / max(total, 1), 4)
    x = np.zeros((*size, 3), np.float32)
    model(x)
    t0 = time.perf_counter()
    for _ in range(50):
        model(x)
    out["ms_per_call"] = round((time.perf_counter() - t0) / 50 * 1000, 2)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--calibration", type=Path, nargs="+", required=True,
                        help="folders of training photos (never validation or test)")
    parser.add_argument("--count", type=int, default=300, help="calibration photos")
    parser.add_argument("--stage1-val", type=Path, required=True)
    parser.add_argument("--stage2-val", type=Path, required=True)
    parser.add_argument("--max-drop", type=float, default=0.5,
                        help="largest validation accuracy loss in points to accept int8")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    manifest = load_manifest(args.models)
    s1, s2 = manifest.stages
    size = tuple(s1.input_size)
    pool = [p for folder in args.calibration for p in iter_image_files(folder)]
    random.Random(args.seed).shuffle(pool)
    model = fused_model(args.models / s1.keras.name, args.models / s2.keras.name)
    if model is None:
        raise SystemExit("the stages do not share a trunk: there is no fused model to quantize")
    out = export_int8(model, args.models / INT8_FILE, pool[:args.count], size)
    scratch = Path(tempfile.mkdtemp())
    reference = export_tflite(model, scratch / FUSED_FILE)  # the float16 fused model

    val1 = class_folders(args.stage1_val, STAGE_LABELS["organic-recyclable"])
    val2 = class_folders(args.stage2_val, STAGE_LABELS["material"])
    data = dict(stage1=(val1.paths, val1.labels), stage2=(val2.paths, val2.labels), size=size)
    float16 = fused_accuracy(reference, s1.threshold, **data)
    shutil.rmtree(scratch, ignore_errors=True)
    int8 = fused_accuracy(out, s1.threshold, **data)
    drop = max(float16["stage1"] - int8["stage1"], float16["stage2"] - int8["stage2"]) * 100
    adopted = drop <= args.max_drop
    report = {"calibration_photos": min(args.count, len(pool)),
              "validation_photos": {"stage1": len(val1.paths), "stage2": len(val2.paths)},
              "float16": float16, "int8": int8, "largest_drop_points": round(drop, 2),
              "max_drop_points": args.max_drop, "adopted": adopted}
    (args.models / "reports").mkdir(exist_ok=True)
    (args.models / "reports" / "fused_int8.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    path = args.models / "cascade.json"
    raw = json.loads(path.read_text())
    if adopted:
        raw["fused"] = {**raw["fused"], "tflite": INT8_FILE}
        path.write_text(json.dumps(raw, indent=2) + "\n")
        (args.models / FUSED_FILE).unlink(missing_ok=True)  # keeps models/ small
        print(f"int8 adopted: {path} now points the fused model at {INT8_FILE}")
    else:
        out.unlink()
        print(f"int8 rejected: validation accuracy drops {drop:.2f} points (> {args.max_drop})")


if __name__ == "__main__":
    main()
