"""Choose ``decision.min_embedding_norm`` on validation photos only.

The material tail was trained with outlier exposure (training/field_train.py): items of no
class we name get small pooled features. So the embedding's length separates them from our
classes far better than the softmax's confidence does. The rule, fixed before measuring: the
cut is the 1st percentile of the embedding lengths of every known validation photo (the
Kaggle O/R, TrashNet and garbage12 VALIDATION splits, TrashNet's ``trash`` left out), so at
most 1 in 100 photos of our own classes is turned ``uncertain`` by it. Reported beside it:
how many held-out unknown items (garbage12-other's validation part, TrashNet VALIDATION
``trash``) come out ``uncertain`` before and after, and the known photos' coverage, for the
float and the int8 fused models. Usage::

    python tools/choose_unknown_cut.py [--write]   # --write: into models/cascade.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waste_vision.images import ImageReadError, iter_image_files, read_rgb  # noqa: E402
from waste_vision.labels import UNCERTAIN  # noqa: E402
from waste_vision.model.cascade import Cascade, decide  # noqa: E402
from waste_vision.training.fielddata import unknown_items  # noqa: E402

SPLITS = ("kaggle-or-split", "trashnet-split", "garbage12-split")
QUANTILE = 0.01


def photos(folder: Path) -> list[Path]:
    return [
        p
        for sub in sorted(folder.iterdir())
        if sub.is_dir() and sub.name != "trash"
        for p in iter_image_files(sub)
    ]


def measure(cascade: Cascade, paths: list[Path], desc: str) -> tuple[np.ndarray, list]:
    norms, results = [], []
    for path in tqdm(paths, desc=desc):
        try:
            result = cascade.classify(read_rgb(path), all_stages=True)
        except ImageReadError:
            continue
        assert result.embedding is not None, "the models give no embedding"
        norms.append(float(np.linalg.norm(result.embedding)))
        results.append(result)
    return np.array(norms), results


def uncertain_share(cascade: Cascade, results: list, norms: np.ndarray, cut: float) -> float:
    rule = replace(cascade.model_rule, min_embedding_norm=cut)
    said = [
        decide(rule, r.stage1, r.stage2 if r.stage1.label == "recyclable" else None, n).label
        for r, n in zip(results, norms, strict=True)
    ]
    return float(np.mean([s == UNCERTAIN for s in said]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--work", type=Path, default=ROOT / "work")
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    unknown = unknown_items(
        args.shared / "garbage12-other", args.work / "trashnet-split", "VALIDATION"
    )
    report: dict = {"rule": __doc__.split("\n\n")[1].replace("\n", " "), "quantile": QUANTILE}
    cut = None
    for name, int8 in (("float", False), ("int8", True)):
        cascade = Cascade(args.models, backend="litert", int8=int8)
        known: dict[str, tuple[np.ndarray, list]] = {
            split: measure(cascade, photos(args.work / split / "VALIDATION"), f"{name} {split}")
            for split in SPLITS
        }
        u_norms, u_results = measure(cascade, unknown, f"{name} unknown items")
        if cut is None:  # chosen on the float model, the one the int8 model approximates
            cut = float(np.quantile(np.concatenate([n for n, _ in known.values()]), QUANTILE))
        report[name] = {
            "known_uncertain": {
                split: {
                    "photos": len(n),
                    "before": round(uncertain_share(cascade, r, n, 0.0), 4),
                    "after": round(uncertain_share(cascade, r, n, cut), 4),
                }
                for split, (n, r) in known.items()
            },
            "unknown_uncertain": {
                "photos": len(u_norms),
                "before": round(uncertain_share(cascade, u_results, u_norms, 0.0), 4),
                "after": round(uncertain_share(cascade, u_results, u_norms, cut), 4),
            },
            "norm_median": {
                "known": round(float(np.median(np.concatenate([n for n, _ in known.values()]))), 3),
                "unknown": round(float(np.median(u_norms)), 3),
            },
        }
    report["min_embedding_norm"] = round(cut, 3)
    text = json.dumps(report, indent=2)
    print(text)
    out = args.models / "reports" / "unknown_cut.json"
    out.write_text(text + "\n")
    if args.write:
        path = args.models / "cascade.json"
        raw = json.loads(path.read_text())
        raw.setdefault("decision", {})["min_embedding_norm"] = round(cut, 3)
        raw["decision"]["min_embedding_norm_chosen"] = (
            "on validation only (tools/choose_unknown_cut.py, models/reports/unknown_cut.json): "
            "the 1st percentile of the known validation photos' embedding lengths"
        )
        path.write_text(json.dumps(raw, indent=2) + "\n")
        print(f"{path}: decision.min_embedding_norm = {cut:.3f}")


if __name__ == "__main__":
    main()
