"""Which photos each stage learns from, read from split folders (TRAIN/ VALIDATION/ TEST/).

A stage reads its own split folder and, optionally, extra sources split the same way. Each
file keeps the name of its source so validation can be reported per source. For stage 1 an
extra source's materials count as recyclable and its ``organic`` folder as organic; when a
source has both, its recyclable photos are capped at its organic count, so the source
itself (its camera, its backgrounds) never tells the class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from waste_vision.errors import UserError
from waste_vision.images import iter_image_files

SPLITS = ("TRAIN", "VALIDATION", "TEST")
STAGE_LABELS = {
    "organic-recyclable": ["organic", "recyclable"],
    "material": ["cardboard", "glass", "metal", "paper", "plastic"],
}
# Folder names that mean a label, besides the label itself (the Kaggle set uses O and R).
FOLDER_ALIASES = {"o": "organic", "r": "recyclable"}
MATERIALS = set(STAGE_LABELS["material"])


@dataclass
class LabelledFiles:
    paths: list[Path]
    labels: list[int]
    primary: int = -1  # the first ``primary`` files come from the stage's own data set
    sources: list[str] = field(default_factory=list)  # per file: its source folder's name

    def __post_init__(self):
        if self.primary < 0:
            self.primary = len(self.paths)
        if not self.sources:
            self.sources = ["own"] * len(self.paths)

    def extend(self, other: LabelledFiles) -> None:
        self.paths += other.paths
        self.labels += other.labels
        self.sources += other.sources


def _label_of(folder: str, stage: str) -> int | None:
    """The stage's label index for a class folder, or None when the folder is not used."""
    labels = STAGE_LABELS[stage]
    name = FOLDER_ALIASES.get(folder.lower(), folder.lower())
    if stage == "organic-recyclable" and name in MATERIALS:
        name = "recyclable"
    return labels.index(name) if name in labels else None


def class_folders(split_dir: Path, stage: str, source: str = "own") -> LabelledFiles:
    """Images of the class folders under ``split_dir`` that mean a label of the stage."""
    paths, ys = [], []
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        y = _label_of(folder.name, stage)
        if y is None:
            continue
        for path in iter_image_files(folder):
            paths.append(path)
            ys.append(y)
    return LabelledFiles(paths, ys, sources=[source] * len(paths))


def cap_recyclable(files: LabelledFiles) -> LabelledFiles:
    """Keep at most as many recyclable as organic photos (every k-th, so all materials stay)."""
    organic = [i for i, y in enumerate(files.labels) if y == 0]
    recyclable = [i for i, y in enumerate(files.labels) if y == 1]
    if not organic or len(recyclable) <= len(organic):
        return files
    step = len(recyclable) / len(organic)
    keep = sorted(organic + [recyclable[int(k * step)] for k in range(len(organic))])
    return LabelledFiles(
        [files.paths[i] for i in keep],
        [files.labels[i] for i in keep],
        sources=[files.sources[i] for i in keep],
    )


def source_name(folder: Path) -> str:
    name = Path(folder).name
    return name[: -len("-split")] if name.endswith("-split") else name


def stage_split(data: Path, stage: str, split: str, extras: Sequence[Path] = ()) -> LabelledFiles:
    """One split of a stage's own data followed by the same split of each extra source."""
    split_dir = Path(data) / split
    if not split_dir.is_dir():
        raise UserError(f"{split_dir} does not exist: run 'waste-vision data split' first")
    files = class_folders(split_dir, stage, source_name(data))
    files.primary = len(files.paths)
    for extra in extras:
        extra_dir = Path(extra) / split
        if not extra_dir.is_dir():
            raise UserError(f"{extra_dir} does not exist: run 'waste-vision data split' first")
        more = class_folders(extra_dir, stage, source_name(extra))
        files.extend(cap_recyclable(more) if stage == "organic-recyclable" else more)
    if not files.paths:
        raise UserError(f"no images of {STAGE_LABELS[stage]} under {split_dir}")
    return files
