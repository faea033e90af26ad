"""Final-label coverage on a stage-1 VALIDATION split, for one or more models folders.

Outlier exposure teaches the material tail to be unsure of items unlike our five
materials; this measures what that costs on stage 1's recyclable web photos (and organic
ones): the share of photos whose final label is `uncertain`, and how often the given label
is right. Validation only. Usage: python tools/field_coverage.py SPLIT MODELS [MODELS...]
"""

from __future__ import annotations

import sys

import numpy as np

from waste_vision.images import read_rgb, resize_for_model
from waste_vision.model.cascade import UNCERTAIN, Cascade
from waste_vision.training.data import stage_split


def main(split: str, *folders: str) -> None:
    val = stage_split(split, "organic-recyclable", "VALIDATION")
    y = np.asarray(val.labels)
    images = [
        np.clip(resize_for_model(read_rgb(p), (224, 224)), 0, 255).astype(np.uint8)
        for p in val.paths
    ]
    for folder in folders:
        cascade = Cascade(folder, backend="litert")
        labels = []
        for i in range(0, len(images), 32):
            labels += [r.label for r in cascade.classify_many(images[i : i + 32])]
        labels = np.asarray(labels)
        unsure = labels == UNCERTAIN
        said_recyclable = ~np.isin(labels, ["organic", UNCERTAIN])
        right = np.where(y == 1, said_recyclable, labels == "organic")
        print(
            f"{folder}: {len(y)} photos, coverage {1 - unsure.mean():.4f}, right where "
            f"labelled {right[~unsure].mean():.4f}; uncertain: recyclable "
            f"{unsure[y == 1].mean():.4f}, organic {unsure[y == 0].mean():.4f}"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
