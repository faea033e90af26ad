"""What each backbone option costs per frame: the fused cascade's shape for Lite0/1/2 and
for more fine-tuned blocks, timed with LiteRT on this machine, interleaved in one run.

Each option is built as the shipped fused model is (one frozen trunk up to ``split``, two
stage tails: the remaining blocks + 1280-channel head + classifier), exported to a
float16-weight ``.tflite`` and timed round-robin, so the ratios to the shipped option hold
even on a busy machine. Needs the ``train`` extra (TensorFlow for the export).

Usage: ``python benchmarks/backbone_cost.py [--out work/backbone_cost] [--rounds 30]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# (name, backbone, input size, split block): the shipped option first
OPTIONS = [
    ("lite0 224, last block tuned (shipped)", "lite0", 224, 15),
    ("lite0 224, last 3 blocks tuned", "lite0", 224, 13),
    ("lite0 224, last 5 blocks tuned", "lite0", 224, 11),
    ("lite1 224, last block tuned", "lite1", 224, 20),
    ("lite1 240, last block tuned", "lite1", 240, 20),
    ("lite2 224, last block tuned", "lite2", 224, 20),
    ("lite2 260, last block tuned", "lite2", 260, 20),
]


def fused_shape(backbone: str, size: int, split: int):
    """A fused-cascade-shaped Keras model (weights untrained: the cost does not depend on them)."""
    import keras
    from keras import layers

    from waste_vision.training.backbone import lite_tail, lite_trunk

    trunk = lite_trunk(backbone, split, size, pretrained=False)
    inputs = keras.Input((size, size, 3), name="image")
    features = trunk(inputs)
    outputs = []
    for prefix, units, act in (("s1_", 1, "sigmoid"), ("s2_", 5, "softmax")):
        tin, x = lite_tail(backbone, split, size, name_prefix=prefix, pretrained=False)
        x = layers.GlobalAveragePooling2D()(x)
        x = layers.Dense(units, activation=act)(x)
        outputs.append(keras.Model(tin, x, name=f"{prefix}tail")(features))
    return keras.Model(inputs, outputs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("work/backbone_cost"))
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    from ai_edge_litert.interpreter import Interpreter

    from waste_vision.training.export import export_tflite

    args.out.mkdir(parents=True, exist_ok=True)
    runs = {}
    for name, backbone, size, split in OPTIONS:
        path = args.out / f"{backbone}-{size}-s{split}.tflite"
        if not path.exists():
            export_tflite(fused_shape(backbone, size, split), path)
        interp = Interpreter(model_path=str(path), num_threads=args.threads)
        interp.allocate_tensors()
        index = interp.get_input_details()[0]["index"]
        x = np.random.default_rng(0).uniform(0, 255, (1, size, size, 3)).astype(np.float32)
        runs[name] = (interp, index, x, [])
    for _ in range(args.rounds):  # round-robin: every option sees the same machine load
        for interp, index, x, times in runs.values():
            for _ in range(5):
                t = time.perf_counter()
                interp.set_tensor(index, x)
                interp.invoke()
                times.append(time.perf_counter() - t)
    base = np.median(next(iter(runs.values()))[3])
    report = {}
    for name, (*_, times) in runs.items():
        p50 = float(np.median(times))
        report[name] = {"p50_ms": round(p50 * 1000, 2), "vs_shipped": round(p50 / base, 2)}
        print(f"{name:<40} p50 {p50 * 1000:6.2f} ms  {p50 / base:4.2f}x")
    (args.out / "backbone_cost.json").write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
