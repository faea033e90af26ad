"""Which photos each stage learns from, read from split folders (TRAIN/ VALIDATION/ TEST/)."""

from __future__ import annotations

from dataclasses import dataclass
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

    def __post_init__(self):
        if self.primary < 0:
            self.primary = len(self.paths)


def _label_of(folder: str, labels: list[str]) -> int | None:
    name = FOLDER_ALIASES.get(folder.lower(), folder.lower())
    return labels.index(name) if name in labels else None


def class_folders(split_dir: Path, labels: list[str]) -> LabelledFiles:
    """Images of the class folders under ``split_dir`` whose names are labels of the stage."""
    paths, ys = [], []
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir()):
        y = _label_of(folder.name, labels)
        if y is None:
            continue
        for path in iter_image_files(folder):
            paths.append(path)
            ys.append(y)
    return LabelledFiles(paths, ys)


def stage_split(data: Path, stage: str, split: str,
                extra_recyclable: list[Path] = ()) -> LabelledFiles:
    """One split of a stage's data; for stage 1, material photos can be added as recyclable."""
    labels = STAGE_LABELS[stage]
    split_dir = Path(data) / split
    if not split_dir.is_dir():
        raise UserError(f"{split_dir} does not exist: run 'waste-vision data split' first")
    files = class_folders(split_dir, labels)
    files.primary = len(files.paths)
    for extra in extra_recyclable:
        extra_dir = Path(extra) / split
        for folder in sorted(p for p in extra_dir.iterdir() if p.is_dir()):
            if folder.name.lower() in MATERIALS:
                for path in iter_image_files(folder):
                    files.paths.append(path)
                    files.labels.append(labels.index("recyclable"))
    if not files.paths:
        raise UserError(f"no images of {labels} under {split_dir}")
    return files
