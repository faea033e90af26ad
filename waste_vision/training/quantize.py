"""Int8 fused cascade, for `--int8`: quantize, then measure what it changes.

The fused model's trunk pass is most of a frame's CPU time; int8 weights and activations
(calibrated on training photos) nearly halve it under XNNPACK. The price is measured, never
assumed: how often int8 and float16 disagree (label-free, so it can be counted on many photos
that are neither calibration nor test photos) and the validation accuracy of both. The layers
that quantize worst (by the TFLite quantization debugger, typically the stem at 112x112) stay
float. The model is listed as ``"fused_int8"`` in ``cascade.json``; the float16 fused model
stays the default. Figures go to ``models/reports/fused_int8.json``.

    python -m waste_vision.training.quantize --models models \\
        --calibration work/or-split2/TRAIN work/trashnet-split/TRAIN \\
        --stage1-val work/or-split2/VALIDATION --stage2-val work/trashnet-split/VALIDATION
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from waste_vision.images import ImageReadError, iter_image_files, read_rgb, resize_for_model
from waste_vision.model.litert_backend import LiteRTModel
from waste_vision.model.manifest import load_manifest
from waste_vision.training.data import class_folders
from waste_vision.training.export import export_tflite
from waste_vision.training.fuse import FUSED_FILE, fused_model

INT8_FILE = "cascade_fused_int8.tflite"


def _inputs(paths: list[Path], size: tuple[int, int]):
    for path in paths:
        try:
            yield path, resize_for_model(read_rgb(path), size)
        except ImageReadError:
            continue


def export_int8(
    model,
    out: Path,
    calibration: list[Path],
    debug: list[Path],
    size: tuple[int, int],
    float_layers: int = 5,
) -> list[str]:
    """Write ``model`` with int8 weights and activations (float32 in and out), keeping the
    ``float_layers`` layers with the largest quantization error (on ``debug`` photos) float.
    Returns the names of the layers kept float."""
    import tensorflow as tf

    def representative():
        for _path, x in _inputs(calibration, size):
            yield [x[None]]

    def debug_set():
        for _path, x in _inputs(debug, size):
            yield [x[None]]

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        keep_float: list[str] = []
        if float_layers:
            probe = tf.lite.experimental.QuantizationDebugger(
                converter=converter, debug_dataset=debug_set
            )
            probe.run()
            keep_float = _worst_layers(probe, float_layers)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter,
            debug_dataset=representative,
            debug_options=tf.lite.experimental.QuantizationDebugOptions(
                denylisted_nodes=keep_float
            ),
        )
        out.write_bytes(debugger.get_nondebug_quantized_model())
    return keep_float


def _worst_layers(debugger, count: int) -> list[str]:
    """Output tensors with the largest RMS error in quantization steps (not the final
    sigmoid/softmax, whose error is only output rounding)."""
    import csv
    import io

    buffer = io.StringIO()
    debugger.layer_statistics_dump(buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    ranked = sorted(
        (float(r["mean_squared_error"]) ** 0.5 / float(r["scale"]), r["tensor_name"])
        for r in rows
        if float(r["scale"] or 0) > 0 and r["op_name"] not in ("LOGISTIC", "SOFTMAX")
    )
    return [name for _error, name in ranked[::-1][:count]]


def _short(tensor_names: list[str]) -> list[str]:
    """'.../trunk_1/block0_dwconv_1/depthwise;...' -> 'block0_dwconv'."""
    out = []
    for name in tensor_names:
        found = re.search(r"/(\w+?)_1/(?:convolution|depthwise|MatMul)", name)
        out.append(found.group(1) if found else name.split(";")[0])
    return out


def _outputs(tflite: Path, inputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, float]:
    model = LiteRTModel(tflite, threads=2)
    out = [model(x) for x in inputs]
    t0 = time.perf_counter()
    for _ in range(50):
        model(inputs[0])
    ms = (time.perf_counter() - t0) / 50 * 1000
    return np.array([o[0].reshape(-1)[0] for o in out]), np.array([o[1] for o in out]), ms


def compare(
    float16: Path,
    int8: Path,
    threshold: float,
    photos: list[Path],
    stage1: tuple[list[Path], np.ndarray],
    stage2: tuple[list[Path], np.ndarray],
    size,
) -> dict:
    """Disagreements on ``photos`` (no labels needed) and validation accuracy of both."""
    x = [v for _p, v in _inputs(photos, size)]
    (a1, a2, _), (b1, b2, _) = _outputs(float16, x), _outputs(int8, x)
    report: dict[str, Any] = {"agreement_photos": len(x), "float16": {}, "int8": {}}
    report["stage1_flips"] = int(np.sum((a1 >= threshold) != (b1 >= threshold)))
    # stage 2 only matters where stage 1 says recyclable
    recyclable = a1 >= threshold
    report["stage2_flips_on_recyclable"] = int(np.sum((a2.argmax(1) != b2.argmax(1)) & recyclable))
    report["recyclable_photos"] = int(recyclable.sum())
    val = {
        stage: ([v for _p, v in _inputs(paths, size)], labels)  # decoded once for both
        for stage, (paths, labels) in (("stage1", stage1), ("stage2", stage2))
    }
    for name, path in (("float16", float16), ("int8", int8)):
        for stage, (xs, labels) in val.items():
            p1, p2, ms = _outputs(path, xs)
            guess = (p1 >= threshold).astype(int) if stage == "stage1" else p2.argmax(1)
            report[name][f"{stage}_val_accuracy"] = round(float(np.mean(guess == labels)), 4)
        report[name]["ms_per_call"] = round(ms, 2)
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument(
        "--calibration",
        type=Path,
        nargs="+",
        required=True,
        help="folders of training photos (never validation or test)",
    )
    parser.add_argument("--count", type=int, default=300, help="calibration photos")
    parser.add_argument(
        "--agreement",
        type=int,
        default=1000,
        help="further training photos to count disagreements on",
    )
    parser.add_argument(
        "--float-layers", type=int, default=5, help="worst-quantizing layers kept float"
    )
    parser.add_argument("--stage1-val", type=Path, required=True)
    parser.add_argument("--stage2-val", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    manifest = load_manifest(args.models)
    s1, s2 = manifest.stages
    size = s1.input_size  # (height, width)
    pool = [p for folder in args.calibration for p in iter_image_files(folder)]
    random.Random(args.seed).shuffle(pool)
    calibration, rest = pool[: args.count], pool[args.count :]
    n_debug = min(40, len(rest) // 2)  # photos for the per-layer error probe
    debug, agreement = rest[:n_debug], rest[n_debug : n_debug + args.agreement]
    if s1.keras is None or s2.keras is None:
        raise SystemExit(
            "the manifest names no .keras model for a stage: there is nothing to quantize"
        )
    model = fused_model(args.models / s1.keras.name, args.models / s2.keras.name)
    if model is None:
        raise SystemExit("the stages do not share a trunk: there is no fused model to quantize")
    out = args.models / INT8_FILE
    kept_float = export_int8(model, out, calibration, debug, size, args.float_layers)
    scratch = Path(tempfile.mkdtemp())
    try:
        reference = export_tflite(model, scratch / FUSED_FILE)  # float16, as shipped
        val1 = class_folders(args.stage1_val, "organic-recyclable")
        val2 = class_folders(args.stage2_val, "material")
        report = compare(
            reference,
            out,
            s1.threshold,
            agreement + val1.paths + val2.paths,
            (val1.paths, np.asarray(val1.labels)),
            (val2.paths, np.asarray(val2.labels)),
            size,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {"calibration_photos": len(calibration), "kept_float": _short(kept_float), **report}
    (args.models / "reports").mkdir(exist_ok=True)
    (args.models / "reports" / "fused_int8.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    path = args.models / "cascade.json"
    raw = json.loads(path.read_text())
    raw["fused_int8"] = {"tflite": INT8_FILE, "outputs": ["stage1", "stage2", "embedding"]}
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(f"{path} lists {INT8_FILE} under 'fused_int8' (used with --int8)")


if __name__ == "__main__":
    main()
