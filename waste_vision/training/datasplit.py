"""Split a folder of class images into TRAIN / VALIDATION / TEST for training.

The split is stratified per class and seeded, so a rerun gives the same folders; every
image is decoded first so a broken file fails here, not hours into training; and
byte-identical files never land in two splits, so the test score is not inflated by
images the model has already seen. Near-duplicates (the same photo resized or re-encoded:
a 64-bit difference hash within ``near_dup_bits`` bits) are kept together in one split,
and training-pool images that nearly duplicate a kept TEST/VALIDATION image are dropped:
the Kaggle O/R subset has near-identical twins for over a third of its TRAIN photos, which
made a validation split carved at random 20+ points too optimistic.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from waste_vision.errors import UserError
from waste_vision.images import SKIPPED_DIRS, ImageReadError, is_hidden, iter_image_files, read_rgb

SPLITS = ("TRAIN", "VALIDATION", "TEST")
# When a file is in several pre-existing splits, the first split here keeps it.
PRIORITY = ("TEST", "VALIDATION", "TRAIN")

Progress = Callable[..., Iterable]


def difference_hash(rgb: np.ndarray) -> np.ndarray:
    """64 booleans: is each pixel of a 9x8 grey thumbnail brighter than its left neighbour."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    return (small[:, 1:] > small[:, :-1]).ravel()


def _near_groups(paths: list[Path], hashes: dict[Path, np.ndarray], bits: int) -> list[list[Path]]:
    """Connected groups of images whose hashes differ in at most ``bits`` bits."""
    parent = list(range(len(paths)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if bits >= 0 and len(paths) > 1:
        h = np.array([hashes[p] for p in paths])
        for i in range(len(paths) - 1):
            for j in np.nonzero((h[i + 1 :] != h[i]).sum(1) <= bits)[0] + i + 1:
                parent[find(int(j))] = find(i)
    groups: dict[int, list[Path]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(find(i), []).append(p)
    return list(groups.values())


def _no_progress(iterable: Iterable, total: int | None = None) -> Iterable:
    return iterable


OUTSIDE_CLASS = "not inside a class folder"


@dataclass
class SplitReport:
    """What ``split_dataset`` did, for the CLI to print and for tests to check."""

    counts: dict[str, dict[str, int]]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (dropped, kept)
    near_duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (dropped, kept)
    linked: int = 0  # files hard-linked rather than copied

    @property
    def unreadable(self) -> int:
        """Files left out because they could not be decoded (not duplicates dropped on
        purpose, nor images outside a class folder)."""
        return len(self.skipped) - len(self.duplicates) - len(self.near_duplicates) - self.outside

    @property
    def outside(self) -> int:
        """Images left out because they are not inside a class folder (e.g. a preview at the
        top of the source)."""
        return sum(reason == OUTSIDE_CLASS for _, reason in self.skipped)

    def summary(self) -> str:
        """A small table: one row per class, one column per split, plus totals."""
        classes = sorted({c for per in self.counts.values() for c in per})
        width = max([len("class"), len("total")] + [len(c) for c in classes])
        rows = [f"{'class':<{width}}" + "".join(f"{s:>12}" for s in SPLITS)]
        for c in classes:
            rows.append(
                f"{c:<{width}}" + "".join(f"{self.counts[s].get(c, 0):>12}" for s in SPLITS)
            )
        rows.append(
            f"{'total':<{width}}" + "".join(f"{sum(self.counts[s].values()):>12}" for s in SPLITS)
        )
        unreadable = self.unreadable
        rows.append(
            f"skipped: {unreadable} unreadable, {len(self.duplicates)} duplicates, "
            f"{len(self.near_duplicates)} near-duplicates of a kept split"
            + (f", {self.outside} outside a class folder" if self.outside else "")
        )
        return "\n".join(rows)


def _subdirs(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not is_hidden(p.name) and p.name not in SKIPPED_DIRS
    )


def _check_args(src: Path, dst: Path, val: float, test: float) -> None:
    """Refuse calls that cannot give a sensible split before touching any file."""
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise UserError(f"--val {val} and --test {test} must be >= 0 and add up to less than 1")
    if not src.is_dir():
        raise UserError(f"source folder not found: {src}")
    if dst == src or src in dst.parents:
        raise UserError(f"destination {dst} is inside the source {src}; choose a folder outside it")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise UserError(f"destination {dst} is not empty; choose an empty or new folder")


def _scan(src: Path) -> tuple[dict[str, Path], list[str]]:
    """Map each split present in ``src`` to its folder (or ``TRAIN`` to ``src`` itself)."""
    by_name = {p.name.upper(): p for p in _subdirs(src)}
    roots = {name: by_name[name] for name in SPLITS if name in by_name}
    if not roots:
        roots = {"TRAIN": src}
    classes = sorted({c.name for root in roots.values() for c in _subdirs(root)})
    if not classes:
        raise UserError(
            f"no class folders found in {src}; expected SRC/<class>/*.jpg or SRC/TRAIN/<class>/"
        )
    return roots, classes


def split_dataset(
    src: Path | str,
    dst: Path | str,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    link: bool = False,
    progress: Progress | None = None,
    near_dup_bits: int = 4,
) -> SplitReport:
    """Write ``dst/{TRAIN,VALIDATION,TEST}/<class>/`` from ``src``.

    Splits that already exist in ``src`` are kept as they are; the missing ones are carved
    per class out of TRAIN (or out of the class folders when ``src`` has no splits).
    ``progress`` is called as ``progress(iterable, total=n)`` (e.g. ``tqdm``).
    ``near_dup_bits`` < 0 turns the near-duplicate grouping off.
    """
    src, dst = Path(src).resolve(), Path(dst).resolve()
    progress = progress or _no_progress
    _check_args(src, dst, val, test)
    roots, classes = _scan(src)
    report = SplitReport(counts={s: dict.fromkeys(classes, 0) for s in SPLITS})

    # Decode and hash every file; unreadable ones are reported and left out.
    files = []  # (split, class, path)
    for split, root in roots.items():
        for path in iter_image_files(root):
            parts = path.relative_to(root).parts
            if len(parts) < 2 or parts[0] not in classes:
                report.skipped.append((path, OUTSIDE_CLASS))
            else:
                files.append((split, parts[0], path))
    digests: dict[Path, str] = {}
    hashes: dict[Path, np.ndarray] = {}
    for _split, _cls, path in progress(files, total=len(files)):
        try:
            hashes[path] = difference_hash(read_rgb(path))
        except ImageReadError as exc:
            report.skipped.append((path, str(exc)))
            continue
        digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()

    # Deduplicate: a pre-existing TEST (then VALIDATION) copy wins, else the first in sorted
    # order. TRAIN is the pool the missing splits are carved from, so it is deduplicated
    # inside too; duplicates inside a kept TEST/VALIDATION stay: they cannot leak.
    owner: dict[str, tuple[str, Path]] = {}
    fixed: list[tuple[str, str, Path]] = []
    pool: dict[str, list[Path]] = {c: [] for c in classes}
    for split, cls, path in sorted(files, key=lambda f: (PRIORITY.index(f[0]), f[2])):
        if path not in digests:
            continue
        digest = digests[path]
        kept = owner.setdefault(digest, (split, path))
        is_pool = split == "TRAIN"
        if kept[1] != path and (kept[0] != split or is_pool):
            report.skipped.append((path, f"duplicate of {kept[1]}"))
            report.duplicates.append((path, kept[1]))
        elif is_pool:
            pool[cls].append(path)
        else:
            fixed.append((split, cls, path))

    # Pool images that nearly duplicate a kept TEST/VALIDATION image would leak it: drop them.
    if near_dup_bits >= 0 and fixed:
        fixed_paths = [f[2] for f in fixed]
        fixed_hashes = np.array([hashes[p] for p in fixed_paths])
        for cls in classes:
            keep = []
            for path in pool[cls]:
                dist = (fixed_hashes != hashes[path]).sum(1)
                if dist.min() <= near_dup_bits:
                    twin = fixed_paths[int(dist.argmin())]
                    report.skipped.append((path, f"near-duplicate of {twin}"))
                    report.near_duplicates.append((path, twin))
                else:
                    keep.append(path)
            pool[cls] = keep

    # Carve the missing splits per class, whole near-duplicate groups at a time; one seeded
    # RNG over sorted lists is reproducible.
    rng = random.Random(seed)
    fractions = {"TEST": test, "VALIDATION": val}
    plan = list(fixed)
    for cls in classes:
        groups = _near_groups(sorted(pool[cls]), hashes, near_dup_bits)
        rng.shuffle(groups)
        total = sum(len(g) for g in groups)
        for split in ("TEST", "VALIDATION"):
            if split in roots:
                continue
            n, taken = round(total * fractions[split]), 0
            while groups and taken < n:
                group = groups.pop()
                plan += [(split, cls, p) for p in group]
                taken += len(group)
        plan += [("TRAIN", cls, p) for g in groups for p in g]

    for split in SPLITS:
        for cls in classes:
            (dst / split / cls).mkdir(parents=True, exist_ok=True)
    used: set[Path] = set()
    for split, cls, path in progress(plan, total=len(plan)):
        target = dst / split / cls / path.name
        n = 1
        while target in used:
            target = target.with_name(f"{path.stem}_{n}{path.suffix}")
            n += 1
        used.add(target)
        report.linked += _place(path, target, link)
        report.counts[split][cls] += 1
    return report


def _place(source: Path, target: Path, link: bool) -> bool:
    """Hard-link when asked and possible (other disk, no permission: copy); True if linked."""
    if link:
        try:
            os.link(source, target)
            return True
        except OSError:
            pass
    shutil.copy2(source, target)
    return False
