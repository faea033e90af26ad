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

``--counting`` scores the counting clip instead (``make_counting_clip``, built in a temporary
folder): the real sample photos on the demo clip's bare table, the first one already lying
there in the first frame (learnt into the empty scene), then it leaves and others come and go,
one of them lying still for 12 s. Its bare-table frames must be ``empty`` and every item
counted once, the first one included (issue 22's ghost items).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waste_vision.engine.frames import EMPTY  # noqa: E402
from waste_vision.engine.items import iou  # noqa: E402
from waste_vision.engine.pipeline import FrameClassifier  # noqa: E402
from waste_vision.engine.sources import Buffering, FileSource  # noqa: E402
from waste_vision.model.cascade import Cascade  # noqa: E402
from waste_vision.resources import default_models_dir  # noqa: E402

SAMPLES = ROOT / "assets" / "samples"
# (label, sample photo, enters from, t_in, t_out, centre x, centre y) on a 640x360 table;
# t_in None: already lying there in the first frame
COUNTING_SCHEDULE = [
    ("organic", "organic_kaggle_O_10211.jpg", "left", None, 3.0, 320, 180),
    ("glass", "glass_garbage12_brown-glass1.jpg", "top", 6.0, 9.5, 300, 190),
    ("paper", "paper_trashnet_paper104.jpg", "left", 11.5, 15.0, 170, 180),
    ("metal", "metal_garbage12_metal101.jpg", "right", 11.5, 15.0, 470, 170),
    ("plastic", "plastic_garbage12_plastic162.jpg", "bottom", 17.0, 29.0, 330, 180),
    ("cardboard", "cardboard_trashnet_cardboard1.jpg", "left", 31.0, 34.5, 300, 180),
]


def make_counting_clip(
    out_dir: Path, fps: int = 15, seconds: float = 37.0, size: tuple[int, int] = (640, 360)
) -> tuple[Path, Path]:
    """Write ``counting.mp4`` and ``counting_truth.jsonl`` (the demo clip's format) in
    ``out_dir``: real photos with a soft shadow sliding over a real frame of bare table (the
    demo clip's first frame), light drift and camera noise. Returns (clip, truth)."""
    w, h = size
    cap = cv2.VideoCapture(str(ROOT / "assets" / "demo.mp4"))
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError("assets/demo.mp4: no first frame")
    top = cv2.resize(
        cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), size, interpolation=cv2.INTER_AREA
    ).astype(np.float32)
    rng = np.random.default_rng(22)
    items = []
    for label, name, entry, t_in, t_out, cx, cy in COUNTING_SCHEDULE:
        rgb = cv2.cvtColor(cv2.imread(str(SAMPLES / name)), cv2.COLOR_BGR2RGB)
        side = int(rng.integers(120, 151))
        scale = side / max(rgb.shape[:2])
        img = cv2.resize(
            rgb,
            (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
            interpolation=cv2.INTER_AREA,
        ).astype(np.float32)
        items.append((label, entry, t_in, t_out, cx, cy, img))
    slide = 0.8

    def position(entry, t, t_in, t_out, cx, cy, iw, ih):
        if (t_in is not None and t < t_in) or t > t_out + slide:
            return None
        off = {
            "left": (-iw, cy - ih // 2),
            "right": (w, cy - ih // 2),
            "top": (cx - iw // 2, -ih),
            "bottom": (cx - iw // 2, h),
        }[entry]
        rest = (cx - iw // 2, cy - ih // 2)
        if t_in is not None and t < t_in + slide:
            a, start, end = (t - t_in) / slide, off, rest
        elif t > t_out:
            a, start, end = (t - t_out) / slide, rest, off
        else:
            return rest
        a = a * a * (3 - 2 * a)  # ease in and out
        return (
            round(start[0] + (end[0] - start[0]) * a),
            round(start[1] + (end[1] - start[1]) * a),
        )

    clip, truth_path = out_dir / "counting.mp4", out_dir / "counting_truth.jsonl"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    lines = []
    for i in range(int(fps * seconds)):
        t = i / fps
        frame = top.copy()
        truth = []
        for k, (label, entry, t_in, t_out, cx, cy, img) in enumerate(items):
            pos = position(entry, t, t_in, t_out, cx, cy, img.shape[1], img.shape[0])
            if pos is None:
                continue
            x, y = pos
            ih, iw = img.shape[:2]
            shadow = np.zeros((h, w), np.float32)  # a soft drop shadow, down and right
            sx0, sy0, sx1, sy1 = (
                max(0, x + 5),
                max(0, y + 6),
                min(w, x + iw + 5),
                min(h, y + ih + 6),
            )
            if sx0 < sx1 and sy0 < sy1:
                shadow[sy0:sy1, sx0:sx1] = 0.35
                frame *= (1 - cv2.GaussianBlur(shadow, (0, 0), 5))[..., None]
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + iw), min(h, y + ih)
            if x0 >= x1 or y0 >= y1:
                continue
            frame[y0:y1, x0:x1] = img[y0 - y : y1 - y, x0 - x : x1 - x]
            truth.append({"id": k + 1, "label": label, "box": [x0, y0, x1 - x0, y1 - y0]})
        gain = 1 + 0.08 * np.sin(2 * np.pi * t / seconds)
        frame = np.clip(frame * gain + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        lines.append(json.dumps({"frame": i, "t": round(t, 4), "items": truth}))
    writer.release()
    truth_path.write_text("\n".join(lines) + "\n")
    return clip, truth_path


def read_truth(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def score(results: list[dict], truth: list[dict], tally: dict) -> dict:
    """``results``: per frame ``{"verdict", "regions": [{"box", "label"}]}`` in frame order."""
    empty_right = empty_n = busy_right = busy_n = found = item_frames = label_right = 0
    for res, tr in zip(results, truth, strict=False):
        if not tr["items"]:
            empty_n += 1
            empty_right += res["verdict"] == EMPTY
            continue
        busy_n += 1
        busy_right += res["verdict"] != EMPTY
        for item in tr["items"]:
            item_frames += 1
            best = max(
                res["regions"], key=lambda r: iou(tuple(r["box"]), tuple(item["box"])), default=None
            )
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


def run(
    clip: Path, truth_path: Path, models: Path | None = None, int8: bool = False, reuse: bool = True
) -> dict:
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
            results.append(
                {
                    "verdict": r.verdict,
                    "regions": [{"box": list(x.box), "label": x.result.label} for x in r.regions],
                }
            )
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
    parser.add_argument(
        "--classify-every-frame",
        action="store_true",
        help="classify every crop of every frame (no result reused)",
    )
    parser.add_argument(
        "--counting",
        action="store_true",
        help="score the counting clip (first item learnt into the scene)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.counting:
            args.clip, args.truth = make_counting_clip(Path(tmp))
        truth = args.truth or args.clip.with_name(args.clip.stem + "_truth.jsonl")
        report = run(args.clip, truth, args.models, args.int8, not args.classify_every_frame)
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
