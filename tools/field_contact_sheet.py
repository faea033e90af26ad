"""Contact sheet of field-augmented training views (docs/field_augment.png): look at it."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from waste_vision.images import iter_image_files, read_rgb
from waste_vision.training.augment import belt_crops, field_view
from waste_vision.training.fielddata import labtrash_frames


def main(trashnet: str, garbage12: str, labtrash: str, out: str, rows: int = 6) -> None:
    rng = np.random.default_rng(7)
    frames = labtrash_frames(Path(labtrash), "train")[::20]
    belts = belt_crops(
        [f for f, _ in frames], [np.array([b[1:] for b in bx]) for _, bx in frames], rng
    )
    photos = []
    for root in (trashnet, garbage12):
        for cls in ("cardboard", "glass", "metal", "paper", "plastic"):
            files = list(iter_image_files(Path(root) / cls))
            photos.append(files[int(rng.integers(len(files)))])
    picks = [photos[i] for i in rng.permutation(len(photos))[:rows]]
    tiles = []
    for p in picks:
        rgb = read_rgb(p)
        row = [cv2.resize(rgb, (160, 160))]
        for _ in range(7):
            row.append(
                cv2.resize(field_view(rgb, rng, (224, 224), belts).astype(np.uint8), (160, 160))
            )
        tiles.append(np.concatenate(row, 1))
    sheet = np.concatenate(tiles, 0)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {out}: first column the photo, then 7 field views")


if __name__ == "__main__":
    main(*sys.argv[1:5])
