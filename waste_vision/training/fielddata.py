"""Field data on disk: conveyor item crops (labtrash) and items of no class we name.

labtrash frames of one capture session are near-duplicates, and its ``valid`` sessions
(labtrash3, labtrash6) also have frames in ``train``: training uses only the train frames
of the other sessions, so validation never sees a belt session it was trained on.

Unknown items (garbage12-other, TrashNet's ``trash``) are split by a hash of the file name,
a fixed share held out for validation, so the split never depends on the order of a listing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from waste_vision.images import iter_image_files, read_rgb

# labtrash class -> our material label index (cardboard, glass, metal, paper, plastic)
LABTRASH_MATERIAL = {0: 0, 1: 2, 2: 4, 3: 4}
LABTRASH_VALID_SESSIONS = ("labtrash3", "labtrash6")
UNKNOWN_HELD_OUT = 0.3  # share of each unknown class kept for validation


@dataclass
class Crops:
    images: list[np.ndarray]  # RGB uint8 item crops
    labels: list[int]  # material label index
    sessions: list[str]


def session_of(path: Path) -> str:
    return Path(path).name.split("_", 1)[0]


def read_boxes(label_file: Path) -> list[tuple[int, float, float, float, float]]:
    """YOLO boxes ``class cx cy w h`` (normalised); an empty list when the file is missing."""
    if not label_file.exists():
        return []
    rows: list[tuple[int, float, float, float, float]] = []
    for line in label_file.read_text().split("\n"):
        parts = line.split()
        if len(parts) == 5:
            cls = int(parts[0])
            cx, cy, w, h = map(float, parts[1:])
            rows.append((cls, cx, cy, w, h))
    return rows


def labtrash_frames(root: Path, split: str) -> list[tuple[Path, list]]:
    """(frame, boxes) of a labtrash split; for ``train``, without the validation sessions."""
    out = []
    for image in sorted((Path(root) / split / "images").glob("*.jpg")):
        if split == "train" and session_of(image) in LABTRASH_VALID_SESSIONS:
            continue
        out.append((image, read_boxes(Path(root) / split / "labels" / f"{image.stem}.txt")))
    return out


def labtrash_crops(root: Path, split: str, pad: float = 0.08, min_side: int = 24) -> Crops:
    """Every labelled item of a split, cut by its box padded by ``pad`` of its size."""
    crops = Crops([], [], [])
    for image, boxes in labtrash_frames(root, split):
        rgb = read_rgb(image)
        h, w = rgb.shape[:2]
        for cls, cx, cy, bw, bh in boxes:
            x0 = int(max((cx - bw / 2 - pad * bw) * w, 0))
            x1 = int(min((cx + bw / 2 + pad * bw) * w, w))
            y0 = int(max((cy - bh / 2 - pad * bh) * h, 0))
            y1 = int(min((cy + bh / 2 + pad * bh) * h, h))
            if x1 - x0 < min_side or y1 - y0 < min_side or cls not in LABTRASH_MATERIAL:
                continue
            crops.images.append(rgb[y0:y1, x0:x1].copy())
            crops.labels.append(LABTRASH_MATERIAL[cls])
            crops.sessions.append(session_of(image))
    return crops


def held_out(path: Path) -> bool:
    """Whether an unknown-item photo belongs to validation (fixed by its name's hash)."""
    h = int(hashlib.sha1(Path(path).name.encode()).hexdigest()[:8], 16)
    return (h % 1000) / 1000 < UNKNOWN_HELD_OUT


def unknown_items(other_root: Path, trashnet_split: Path | None, split: str) -> list[Path]:
    """Photos of items none of our classes name: garbage12-other's classes (train part or
    held-out part by ``held_out``) and TrashNet's ``trash`` from the same split."""
    want_val = split == "VALIDATION"
    paths = []
    for folder in sorted(p for p in Path(other_root).iterdir() if p.is_dir()):
        paths += [p for p in iter_image_files(folder) if held_out(p) == want_val]
    if trashnet_split is not None and (Path(trashnet_split) / split / "trash").is_dir():
        paths += list(iter_image_files(Path(trashnet_split) / split / "trash"))
    return paths
