"""The reference embeddings a site profile measures its taught classes against.

A taught class may overrule the base cascade only where an item looks more like it than
ordinary training photos of the other classes do (``model/profile.py``). Those ordinary
photos are a small, fixed sample of each base class's TRAIN photos, embedded once by the
shipped fused model and kept beside it (``models/reference_embeddings.npz``, listed as
``"reference"`` in ``cascade.json``). Never validation or test photos.

Besides ``--per-class`` photos of each base class, ``--broad`` photos of Kaggle's ``R`` folder
are kept as ``recyclable`` (stage 1's label; varied web photos of recyclable items of any
material): a new class must also stand out from them, so that a straw or a tissue box is not
taken for a taught battery. They never count against a taught material (they may be one).

    python -m waste_vision.training.reference --models models \
        --class-folders work/kaggle-or-split/TRAIN work/trashnet-split/TRAIN \
        work/garbage12-split/TRAIN
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from tqdm import tqdm

from waste_vision.images import ImageReadError, iter_image_files, read_rgb
from waste_vision.model.cascade import Cascade
from waste_vision.model.profile import base_labels

REFERENCE_FILE = "reference_embeddings.npz"
FOLDER_LABEL = {"O": "organic", "R": "recyclable"}  # Kaggle's O/R folders; R is no one material


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--class-folders", type=Path, nargs="+", required=True)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--broad", type=int, default=300, help="photos of stage 1's recyclable")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    cascade = Cascade(args.models, backend="litert")
    labels = base_labels(cascade)
    broad = cascade.stage1.labels[1]
    pools: dict[str, list[Path]] = {label: [] for label in [*labels, broad]}
    for root in args.class_folders:
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            label = FOLDER_LABEL.get(folder.name, folder.name)
            if label in pools:
                pools[label] += list(iter_image_files(folder))
    rng = random.Random(args.seed)
    chosen = []
    for label, paths in pools.items():
        rng.shuffle(paths)
        count = args.broad if label == broad else args.per_class
        chosen += [(label, p) for p in sorted(paths[:count])]
    embeddings, names = [], []
    for label, path in tqdm(chosen, desc="reference photos"):
        try:
            result = cascade.classify(read_rgb(path), all_stages=True, profile=False)
        except ImageReadError:
            continue
        assert result.embedding is not None, "the fused model has no embedding output"
        embeddings.append(result.embedding)
        names.append(label)
    out = args.models / REFERENCE_FILE
    np.savez(
        out,
        embeddings=np.stack(embeddings).astype(np.float16),
        labels=np.array(names),
        model=np.array(cascade.model_version),
    )
    path = args.models / "cascade.json"
    raw = json.loads(path.read_text())
    raw["reference"] = {
        "file": REFERENCE_FILE,
        "photos": {label: names.count(label) for label in pools},
        "from": [str(p) for p in args.class_folders],
    }
    path.write_text(json.dumps(raw, indent=2) + "\n")
    print(f"{out}: {len(names)} photos, {out.stat().st_size / 1e6:.2f} MB; listed in {path}")


if __name__ == "__main__":
    main()
