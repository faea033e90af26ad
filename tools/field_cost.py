"""Per-frame cost of two fused models, timed round-robin in one run (LiteRT, 2 threads).

Round-robin so both see the same machine load: on shared cores the absolute figures move,
the ratio is what the shipping rule reads. Usage: python tools/field_cost.py OLD NEW [N]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from waste_vision.model.litert_backend import LiteRTModel


def main(old: str, new: str, n: int = 300) -> None:
    models = {name: LiteRTModel(Path(path), 2) for name, path in (("old", old), ("new", new))}
    x = np.random.default_rng(0).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    times = {name: [] for name in models}
    for model in models.values():
        for _ in range(20):
            model(x)  # warm-up
    for _ in range(n):
        for name, model in models.items():
            t = time.perf_counter()
            model(x)
            times[name].append(time.perf_counter() - t)
    for name in models:
        print(
            f"{name}: p50 {1000 * np.median(times[name]):.2f} ms, "
            f"p90 {1000 * np.percentile(times[name], 90):.2f} ms"
        )
    print(f"new/old p50: {np.median(times['new']) / np.median(times['old']):.3f}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 300)
