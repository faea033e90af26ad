"""Make ``tests/fixtures/slideshow.mp4``, the earlier demo clip the tests use: 720p, 30 FPS, real items.

Each photo fills the frame and drifts slowly (a pan and zoom), as an item under a camera
would, so the clip exercises tracking and classification on changing frames. Usage:
``python tools/make_slideshow_clip.py OUT.mp4 PHOTO...`` (the committed clip used test-split
photos, listed in ``assets/README.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waste_vision.images import read_rgb

SIZE = (1280, 720)
FPS = 30
SECONDS_PER_ITEM = 1.5


def frames_for(rgb: np.ndarray, n: int) -> list[np.ndarray]:
    w, h = SIZE
    scale = max(w / rgb.shape[1], h / rgb.shape[0]) * 1.15
    big = cv2.resize(
        rgb, (int(rgb.shape[1] * scale), int(rgb.shape[0] * scale)), interpolation=cv2.INTER_CUBIC
    )
    out = []
    for i in range(n):
        t = i / max(n - 1, 1)
        zoom = 1.0 + 0.06 * t
        cw, ch = int(w / zoom), int(h / zoom)
        x = int((big.shape[1] - cw) * (0.2 + 0.6 * t))
        y = int((big.shape[0] - ch) * 0.5)
        out.append(cv2.resize(big[y : y + ch, x : x + cw], SIZE, interpolation=cv2.INTER_LINEAR))
    return out


def main(out: Path, photos: list[Path]) -> None:
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    n = int(FPS * SECONDS_PER_ITEM)
    for photo in photos:
        for frame in frames_for(read_rgb(photo), n):
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    print(f"wrote {out}: {len(photos) * n} frames, {out.stat().st_size / 1e6:.1f} MB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
