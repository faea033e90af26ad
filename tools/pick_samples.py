"""Pick ``assets/samples/`` by a written rule, never by what a model gets right.

The rule: for each class, the first photo by file name (sorted, case-sensitive) of each
of two test splits, copied byte for byte as ``<class>_<source>_<original name>``:
- organic: ``kaggle-or/TEST/O`` and the ``garbage12`` split's ``TEST/organic``;
- each material: the ``trashnet`` split's and the ``garbage12`` split's ``TEST/<material>``.
Twelve photos, none ever trained or tuned on; the tests assert an accuracy floor on them.
Usage: ``python tools/pick_samples.py SHARED_DATASETS TRASHNET_SPLIT GARBAGE12_SPLIT OUT``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

MATERIALS = ("cardboard", "glass", "metal", "paper", "plastic")


def first(folder: Path) -> Path:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[0]


def main(shared: Path, trashnet: Path, garbage12: Path, out: Path) -> None:
    picks = [
        ("organic", "kaggle", first(shared / "kaggle-or" / "TEST" / "O")),
        ("organic", "garbage12", first(garbage12 / "TEST" / "organic")),
    ]
    for m in MATERIALS:
        picks += [
            (m, "trashnet", first(trashnet / "TEST" / m)),
            (m, "garbage12", first(garbage12 / "TEST" / m)),
        ]
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        old.unlink()
    for cls, source, path in picks:
        shutil.copyfile(path, out / f"{cls}_{source}_{path.name}")
        print(f"{cls:<10} {source:<10} {path}")


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:5]))
