"""Score item finding, labels and the tally against the scene clip's truth.

Runs the same pipeline as ``annotate`` (``FrameClassifier`` in ``items`` mode over every
frame of ``assets/demo.mp4``) and compares with ``assets/demo_truth.jsonl``:

- empty frames called ``empty``; frames with an item called non-empty;
- items found: truth boxes of item-frames matched by a found box with IoU >= 0.5;
- labels: of the found items, how many have the truth label (``uncertain`` is wrong);
- the tally (each item counted once) against the truth's items.

``python benchmarks/scene_eval.py [--clip assets/demo.mp4] [--json out.json]
[--classify-every-frame]`` (the last: no result reused while an item is unchanged, as
``annotate --classify-every-frame``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waste_vision.cascade import Cascade  # noqa: E402
from waste_vision.frames import EMPTY  # noqa: E402
from waste_vision.items import iou  # noqa: E402
from waste_vision.pipeline import FrameClassifier  # noqa: E402
from waste_vision.resources import default_models_dir  # noqa: E402
from waste_vision.sources import Buffering, FileSource  # noqa: E402


def read_truth(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def score(results: list[dict], truth: list[dict], tally: dict) -> dict:
    """``results``: per frame ``{"verdict", "regions": [{"box", "label"}]}`` in frame order."""
    empty_right = empty_n = busy_right = busy_n = found = item_frames = label_right = 0
    for res, tr in zip(results, truth):
        if not tr["items"]:
            empty_n += 1
            empty_right += res["verdict"] == EMPTY
            continue
        busy_n += 1
        busy_right += res["verdict"] != EMPTY
        for item in tr["items"]:
            item_frames += 1
            best = max(res["regions"], key=lambda r: iou(tuple(r["box"]), tuple(item["box"])),
                       default=None)
            if best is not None and iou(tuple(best["box"]), tuple(item["box"])) >= 0.5:
                found += 1
                label_right += best["label"] == item["label"]
    truth_tally = Counter()
    for label in {(i["id"], i["label"]) for tr in truth for i in tr["items"]}:
        truth_tally[label[1]] += 1
    return {
        "frames": len(results),
        "empty_called_empty": round(empty_right / max(empty_n, 1), 4),
        "item_called_not_empty": round(busy_right / max(busy_n, 1), 4),
        "items_found_iou50": round(found / max(item_frames, 1), 4),
        "label_accuracy_of_found": round(label_right / max(found, 1), 4),
        "tally": dict(sorted(tally.items())),
        "truth_tally": dict(sorted(truth_tally.items())),
        "tally_exact": dict(tally) == dict(truth_tally),
    }


def run(clip: Path, truth_path: Path, models: Path | None = None, int8: bool = False,
        reuse: bool = True) -> dict:
    cascade = Cascade(models or default_models_dir(), backend="litert", int8=int8)
    classifier = FrameClassifier(cascade, mode="items", reuse=reuse)
    results = []
    start = time.perf_counter()
    with FileSource(clip, buffering=Buffering.EVERY_FRAME) as source:
        while True:
            frame = source.read(timeout=1.0)
            if frame is None:
                if source.finished:
                    break
                continue
            r = classifier(frame)
            results.append({"verdict": r.verdict, "regions": [
                {"box": list(x.box), "label": x.result.label} for x in r.regions]})
    seconds = time.perf_counter() - start
    report = score(results, read_truth(truth_path), classifier.tracker.tally)
    report["pipeline_fps_without_drawing_or_encoding"] = round(len(results) / seconds, 1)
    if classifier.reuse is not None:
        done = classifier.reuse.classified + classifier.reuse.reused
        report["crops_reused"] = round(classifier.reuse.reused / max(done, 1), 4)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=ROOT / "assets" / "demo.mp4")
    parser.add_argument("--truth", type=Path, default=None)
    parser.add_argument("--models", type=Path, default=None)
    parser.add_argument("--int8", action="store_true")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--classify-every-frame", action="store_true",
                        help="classify every crop of every frame (no result reused)")
    args = parser.parse_args()
    truth = args.truth or args.clip.with_name(args.clip.stem + "_truth.jsonl")
    report = run(args.clip, truth, args.models, args.int8, not args.classify_every_frame)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
