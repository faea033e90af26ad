"""Choose the cascade's ``min_confidence`` on validation photos only.

For each candidate cut, the final label's coverage (share not 'uncertain') and accuracy
where labelled, on the stage-1 validation split (final label mapped to organic/recyclable)
and the material validation splits. Usage:
``python tools/choose_confidence.py MODELS STAGE1_SPLIT MATERIAL_SPLIT [MATERIAL_SPLIT ...]``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from waste_vision.images import read_rgb
from waste_vision.model.cascade import UNCERTAIN, Cascade, decide
from waste_vision.training.data import class_folders

CUTS = [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8]


def main(models: Path, stage1: Path, *materials: Path) -> None:
    cascade = Cascade(models, backend="litert")
    sets = [("stage1", "organic-recyclable", stage1)] + [
        (f"material:{m.name}", "material", m) for m in materials
    ]
    table = {}
    for name, stage, folder in sets:
        files = class_folders(folder / "VALIDATION", stage)
        labels = (
            ["organic", "recyclable"] if stage == "organic-recyclable" else cascade.stage2.labels
        )
        raw = [cascade.classify(read_rgb(p), all_stages=True) for p in files.paths]
        for cut in CUTS:
            rule = type(cascade.rule)(cascade.rule.stage1_threshold, cut)
            said = []
            for r in raw:
                s2 = r.stage2 if r.stage1.label == "recyclable" else None
                label = decide(rule, r.stage1, s2).label
                if stage == "organic-recyclable" and label not in ("organic", UNCERTAIN):
                    label = "recyclable"
                said.append(label)
            said = np.array(said)
            truth = np.array([labels[y] for y in files.labels])
            covered = said != UNCERTAIN
            table.setdefault(str(cut), {})[name] = {
                "coverage": round(float(covered.mean()), 4),
                "accuracy_labelled": round(float((said == truth)[covered].mean()), 4),
            }
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:]))
