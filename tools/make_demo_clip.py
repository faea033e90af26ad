"""Make the demo clip with truth: items slide onto a table, stay, leave; nothing else moves.

``assets/demo.mp4`` (1280x720, 30 FPS, 32 s) and ``assets/demo_truth.jsonl`` (one line per
frame: ``{"frame", "t", "items": [{"id", "label", "box": [x, y, w, h]}]}``, boxes clipped to
the frame) for measuring item finding, labels and the tally (``benchmarks/scene_eval.py``).

- The table: a seeded wood-like texture (no photo of ours could be a table without also
  being a training photo).
- The items: test-split photos only, never trained or tuned on — per class the second photo
  by file name (the first is in ``assets/samples``): organic from ``kaggle-or/TEST/O`` and
  the garbage12 split's ``TEST/organic``; materials from the TrashNet and garbage12 splits'
  ``TEST/<material>``. Each is shrunk to 240-300 px, given a soft drop shadow, and slides in
  from an edge over 0.8 s, stays, and slides out.
- The schedule has empty gaps, two pairs of items side by side, a slow light drift (gain
  0.88-1.12 with a warm/cool tint) and camera noise (sigma 3), so the empty scene must be
  followed without learning items into it.

Usage: ``python tools/make_demo_clip.py SHARED_DATASETS TRASHNET_SPLIT GARBAGE12_SPLIT``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
W, H, FPS, SECONDS = 1280, 720, 30, 32
SLIDE_S = 0.8


def table(rng: np.random.Generator) -> np.ndarray:
    """A light wood-like table top: low-frequency tone, long grain streaks, fine noise."""
    base = np.array([178, 150, 118], np.float32)  # RGB, light oak
    tone = cv2.resize(
        rng.normal(0, 1, (6, 10)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC
    )
    grain = cv2.resize(
        rng.normal(0, 1, (H // 4, 8)).astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR
    )
    img = base[None, None] + (6 * tone + 9 * grain)[..., None] * np.array([1, 0.9, 0.8])
    return np.clip(img, 0, 255)


def first_two(folder: Path) -> Path:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return files[1]


# (label, photo folder key, material/organic folder, enter from, t_in, t_out, centre x, centre y)
SCHEDULE = [
    ("organic", "kaggle", "O", "left", 2.0, 5.5, 640, 360),
    ("glass", "trashnet", "glass", "top", 7.0, 10.5, 600, 380),
    ("paper", "garbage12", "paper", "left", 12.5, 17.0, 380, 360),
    ("plastic", "trashnet", "plastic", "right", 12.5, 17.0, 900, 380),
    ("metal", "garbage12", "metal", "bottom", 19.0, 22.5, 660, 350),
    ("cardboard", "trashnet", "cardboard", "left", 24.5, 28.0, 420, 370),
    ("organic", "garbage12", "organic", "right", 24.8, 28.3, 880, 340),
]


def photo_for(key: str, folder: str, shared: Path, trashnet: Path, garbage12: Path) -> Path:
    root = {
        "kaggle": shared / "kaggle-or" / "TEST",
        "trashnet": trashnet / "TEST",
        "garbage12": garbage12 / "TEST",
    }[key]
    return first_two(root / folder)


def item_image(path: Path, rng: np.random.Generator) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    side = rng.integers(240, 301)
    h, w = rgb.shape[:2]
    scale = side / max(h, w)
    return cv2.resize(
        rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    ).astype(np.float32)


def position(
    entry: str, t: float, t_in: float, t_out: float, cx: int, cy: int, w: int, h: int
) -> tuple[int, int] | None:
    """Top-left corner of the item at time t, or None when it is off the table."""
    if t < t_in or t > t_out + SLIDE_S:
        return None
    off = {
        "left": (-w, cy - h // 2),
        "right": (W, cy - h // 2),
        "top": (cx - w // 2, -h),
        "bottom": (cx - w // 2, H),
    }[entry]
    rest = (cx - w // 2, cy - h // 2)
    if t < t_in + SLIDE_S:
        a = (t - t_in) / SLIDE_S
        a = a * a * (3 - 2 * a)  # ease in and out
        start, end = off, rest
    elif t > t_out:
        a = (t - t_out) / SLIDE_S
        a = a * a * (3 - 2 * a)
        start, end = rest, off
        a = a
    else:
        return rest
    return round(start[0] + (end[0] - start[0]) * a), round(start[1] + (end[1] - start[1]) * a)


def paste(frame: np.ndarray, item: np.ndarray, x: int, y: int) -> tuple[int, int, int, int] | None:
    """Item with a soft shadow at (x, y); returns its box clipped to the frame."""
    h, w = item.shape[:2]
    # shadow: a blurred dark rectangle offset down-right
    shadow = np.zeros((H, W), np.float32)
    sx0, sy0 = max(0, x + 10), max(0, y + 12)
    sx1, sy1 = min(W, x + w + 10), min(H, y + h + 12)
    if sx0 < sx1 and sy0 < sy1:
        shadow[sy0:sy1, sx0:sx1] = 0.35
        shadow = cv2.GaussianBlur(shadow, (0, 0), 9)
        frame *= (1 - shadow)[..., None]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x0 >= x1 or y0 >= y1:
        return None
    frame[y0:y1, x0:x1] = item[y0 - y : y1 - y, x0 - x : x1 - x]
    return x0, y0, x1 - x0, y1 - y0


def main(
    shared: Path, trashnet: Path, garbage12: Path, out: Path = ROOT / "assets" / "demo.mp4"
) -> None:
    rng = np.random.default_rng(2026)
    top = table(rng)
    items = [
        (
            label,
            entry,
            t_in,
            t_out,
            cx,
            cy,
            item_image(photo_for(key, folder, shared, trashnet, garbage12), rng),
        )
        for label, key, folder, entry, t_in, t_out, cx, cy in SCHEDULE
    ]
    import av  # H.264 (crf 26): a third of mp4v's size at the same look

    container = av.open(str(out), "w")
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.options = {"crf": "26", "preset": "medium"}
    truth_lines = []
    for i in range(FPS * SECONDS):
        t = i / FPS
        frame = top.copy()
        truth = []
        for k, (label, entry, t_in, t_out, cx, cy, img) in enumerate(items):
            pos = position(entry, t, t_in, t_out, cx, cy, img.shape[1], img.shape[0])
            if pos is None:
                continue
            box = paste(frame, img, *pos)
            if box is not None:
                truth.append({"id": k + 1, "label": label, "box": list(box)})
        gain = 1 + 0.12 * np.sin(2 * np.pi * t / SECONDS)
        tint = np.array([1 + 0.03 * np.sin(t / 5), 1.0, 1 - 0.03 * np.sin(t / 5)])
        frame = frame * gain * tint + rng.normal(0, 3, frame.shape)
        frame = np.clip(frame, 0, 255).astype(np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            container.mux(packet)
        truth_lines.append(json.dumps({"frame": i, "t": round(t, 4), "items": truth}))
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    truth_path = out.with_name(out.stem + "_truth.jsonl")
    truth_path.write_text("\n".join(truth_lines) + "\n")
    print(f"wrote {out} ({FPS * SECONDS} frames) and {truth_path}")


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:4]))
