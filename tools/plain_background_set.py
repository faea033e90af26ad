"""Build the shortcut check set: organic test photos whose background is plain and light.

TrashNet items (all recyclable) lie on white board, so a stage-1 model that learns from them
could learn "white background = recyclable". This picks, from the *test* split only, organic
photos whose border ring is bright and uniform — the case the shortcut would get wrong — and
hard-links them into ``DST/O/``. Usage: ``python tools/plain_background_set.py SRC DST`` with
SRC a folder of organic photos (e.g. ``work/or-split/TEST/O``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waste_vision.images import iter_image_files, read_rgb

MIN_BRIGHTNESS = 165  # mean grey level of the border ring
MAX_SPREAD = 40  # standard deviation of the border ring
RING = 0.1  # border ring width as a fraction of the side


def border_stats(rgb: np.ndarray) -> tuple[float, float]:
    grey = rgb.mean(axis=2)
    h, w = grey.shape
    dh, dw = max(1, int(h * RING)), max(1, int(w * RING))
    ring = np.concatenate(
        [
            grey[:dh].ravel(),
            grey[-dh:].ravel(),
            grey[dh:-dh, :dw].ravel(),
            grey[dh:-dh, -dw:].ravel(),
        ]
    )
    return float(ring.mean()), float(ring.std())


def main(src: Path, dst: Path) -> None:
    out = dst / "O"
    out.mkdir(parents=True, exist_ok=True)
    kept = 0
    for path in iter_image_files(src):
        mean, spread = border_stats(read_rgb(path))
        if mean >= MIN_BRIGHTNESS and spread <= MAX_SPREAD:
            target = out / path.name
            if not target.exists():
                os.link(path, target)
            kept += 1
    print(f"{kept} organic photos with a plain light background in {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
