"""Milliseconds per frame of the shipped LiteRT models: separate stages vs the fused cascade.

Usage: ``python benchmarks/stage_latency.py [--models models] [--threads 2] [--runs 200]``.
Prints p50/p95 per model and the cost of a recyclable frame both ways, measured in one run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waste_vision.commands.bench import _time_calls
from waste_vision.model.litert_backend import LiteRTModel
from waste_vision.model.manifest import load_manifest


def time_model(path: Path, threads: int, runs: int) -> tuple[float, float]:
    """p50 and p95 ms of one model on a random 224x224 frame (the bench's own timing)."""
    x = np.random.default_rng(0).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    t = _time_calls(LiteRTModel(path, threads), x, runs)
    return t["p50_ms"], t["p95_ms"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    manifest = load_manifest(args.models)
    results = {s.name: time_model(s.tflite, args.threads, args.runs) for s in manifest.stages}
    if manifest.fused_tflite:
        results["fused"] = time_model(manifest.fused_tflite, args.threads, args.runs)
    for name, (p50, p95) in results.items():
        print(f"{name:<20} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms")
    separate = results["organic-recyclable"][0] + results["material"][0]
    print(f"recyclable frame, separate stages: {separate:.2f} ms (p50 sum)")
    if "fused" in results:
        print(
            f"recyclable frame, fused:           {results['fused'][0]:.2f} ms "
            f"({separate / results['fused'][0]:.2f}x faster)"
        )
        print(f"organic frame, stage 1 alone:      {results['organic-recyclable'][0]:.2f} ms")


if __name__ == "__main__":
    main()
