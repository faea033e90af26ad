"""What a site profile costs: per item with a 100-photo profile, and from "this is…" to the
next frame using it (the window's Teach: copy the crop in, embed it, rebuild the classifier).

    python benchmarks/teach_cost.py [--photos 100] [--runs 300]

Both in one run, on one cascade, so the ratio holds on any machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waste_vision.images import iter_image_files, read_rgb  # noqa: E402
from waste_vision.labels import Bin  # noqa: E402
from waste_vision.model.cascade import Cascade  # noqa: E402
from waste_vision.model.profile import SiteProfile  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"


def interleaved_ms(cascade: Cascade, images: list[np.ndarray], runs: int) -> tuple[float, float]:
    """Median per-item time without and with the profile, calls alternating so that both see
    the same machine load."""
    base, taught = [], []
    for i in range(runs):
        image = images[i % len(images)]
        for use, out in ((False, base), (True, taught)):
            t0 = time.perf_counter()
            cascade.classify(image, profile=use)
            out.append((time.perf_counter() - t0) * 1000)
    return statistics.median(base[10:]), statistics.median(taught[10:])


def head_ms(cascade: Cascade, images: list[np.ndarray], runs: int) -> float:
    """The profile's own work per item (the model pass left out)."""
    head = cascade.profile
    assert head is not None
    results = [cascade.classify(im, all_stages=True, profile=False) for im in images]
    t0 = time.perf_counter()
    for i in range(runs):
        r = results[i % len(results)]
        assert r.stage2 is not None and r.embedding is not None
        head.apply(r, r.stage1, r.stage2, r.embedding, cascade.rule)
    return (time.perf_counter() - t0) * 1000 / runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=100)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    cascade = Cascade(ROOT / "models", backend="litert")
    pool = (
        sorted(iter_image_files(DATA / "trashnet" / "metal"))[: args.photos]
        + sorted(iter_image_files(DATA / "garbage12-other" / "battery"))[: args.photos]
    )
    probe = [read_rgb(p) for p in sorted((ROOT / "assets" / "samples").glob("*.jpg"))]
    with tempfile.TemporaryDirectory() as tmp:
        profile = SiteProfile.open(Path(tmp) / "site", create=True)
        half = args.photos // 2
        for path in pool[:half]:
            profile.add_file("metal", Bin.RECYCLABLE, path, cascade)
        for path in pool[len(pool) - (args.photos - half) :]:
            profile.add_file("battery", Bin.HAZARDOUS, path, cascade)
        head = profile.head(cascade)
        cascade.use_profile(head)
        base_ms, profile_ms = interleaved_ms(cascade, probe, args.runs)
        own_ms = head_ms(cascade, probe, args.runs)
        # items like the taught ones take the head's full path (no early return)
        near = [read_rgb(p) for p in pool[:10] + pool[-10:]]
        near_ms = head_ms(cascade, near, args.runs)
        cascade.use_profile(None)
        # the window's Teach: one crop in, the classifier rebuilt and swapped
        teach_ms = []
        for image in probe[:8]:
            crop = image[20:-20, 20:-20].copy()
            t0 = time.perf_counter()
            profile.add_image("metal", Bin.RECYCLABLE, crop, cascade)
            cascade.use_profile(profile.head(cascade))
            teach_ms.append((time.perf_counter() - t0) * 1000)
        cascade.use_profile(None)
    report = {
        "profile_photos": args.photos,
        "per_item_ms": {
            "base": round(base_ms, 3),
            "with_profile": round(profile_ms, 3),
            "added": round(profile_ms - base_ms, 3),
            "profile_head_alone": round(own_ms, 3),
            "profile_head_alone_taught_like_items": round(near_ms, 3),
        },
        "teach_to_next_frame_ms": {
            "median": round(statistics.median(teach_ms), 1),
            "max": round(max(teach_ms), 1),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
