"""How much do a few taught photos help? Teach k photos per class from one camera session,
score another session, with and without the site profile.

    python benchmarks/teach_curve.py [--out models/reports/teach/teach_curve.json]

Sets (all from ../shared/datasets):
* ``labtrash``: the conveyor camera's validation sessions (labtrash3 <-> labtrash6), item
  crops by their boxes; k photos per class taught from one session, the other scored. There is
  no labtrash test here (later sessions are kept aside), and the profile's constants were
  chosen on these sessions (work/teach/): a validation figure.
* ``battery``: a new class ``battery`` (bin hazardous) from k garbage12-other battery photos;
  scored on the other battery photos (named ``battery``?), on TrashNet / Kaggle TEST photos
  (how many labels change against the base cascade, and accuracy) and on the other items of no
  class we know (shoes, clothes, trash: how many come out ``battery``). Only the half of the
  battery photos not used to choose the rule is used (``BATTERY_SPLIT``; the other half, the
  VALIDATION splits and labtrash chose it).

Each (set, k) is repeated over ``--repeats`` random draws of the taught photos; the mean and
the worst draw are reported. Embeddings are computed once per photo, then each draw fits a
``ProfileHead`` exactly as ``teach add`` would and classifies through ``ProfileHead.apply``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from waste_vision.images import iter_image_files, read_rgb  # noqa: E402
from waste_vision.labels import Bin  # noqa: E402
from waste_vision.model.cascade import Cascade, CascadeResult  # noqa: E402
from waste_vision.model.profile import (  # noqa: E402
    ProfileHead,
    Reference,
    base_labels,
    base_probabilities,
)
from waste_vision.training.fielddata import labtrash_crops  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets"
KS = (1, 3, 5, 10)
BATTERY_SPLIT = 21  # seed of the permutation of the battery photos: first 60 chose the rule


def report_batteries() -> list[Path]:
    """The battery photos kept for this report (the other half chose the profile's rule)."""
    photos = list(iter_image_files(DATA / "garbage12-other" / "battery"))
    order = np.random.RandomState(BATTERY_SPLIT).permutation(len(photos))
    return [photos[i] for i in sorted(order[60:])]


def describe(cascade: Cascade, images, desc: str) -> list[CascadeResult]:
    return [cascade.classify(im, all_stages=True, profile=False) for im in tqdm(images, desc=desc)]


def fit(cascade, reference, results, labels, bins) -> ProfileHead:
    return ProfileHead.fit(
        [r.embedding for r in results],
        labels,
        [base_probabilities(r.stage1, r.stage2) for r in results],
        bins,
        base_labels(cascade),
        reference,
    )


def labels_with(head: ProfileHead, cascade: Cascade, results) -> list[str]:
    return [head.apply(r, r.stage1, r.stage2, r.embedding, cascade.rule).label for r in results]


def labtrash(cascade, reference, repeats, rng) -> dict:
    crops = labtrash_crops(DATA / "labtrash", "valid")
    materials = cascade.stage2.labels
    truth = np.array([materials[i] for i in crops.labels])
    sessions = np.array(crops.sessions)
    results = describe(cascade, crops.images, "labtrash crops")
    out: dict = {"crops": {s: int((sessions == s).sum()) for s in sorted(set(sessions))}}
    pairs = (("labtrash3", "labtrash6"), ("labtrash6", "labtrash3"))
    out["base"] = {
        b: round(
            float(
                np.mean(
                    [r.label for r, s in zip(results, sessions, strict=True) if s == b]
                    == truth[sessions == b]
                )
            ),
            4,
        )
        for _, b in pairs
    }
    for k in KS:
        scores = []
        for a, b in pairs:
            for _ in range(repeats):
                taught = []
                for label in sorted(set(truth[sessions == a])):
                    pool = list(np.where((sessions == a) & (truth == label))[0])
                    rng.shuffle(pool)
                    taught += pool[:k]
                head = fit(
                    cascade,
                    reference,
                    [results[i] for i in taught],
                    [truth[i] for i in taught],
                    dict.fromkeys(set(truth[taught]), Bin.RECYCLABLE),
                )
                test = np.where(sessions == b)[0]
                got = labels_with(head, cascade, [results[i] for i in test])
                scores.append(float(np.mean(np.array(got) == truth[test])))
        out[f"k={k}"] = {"mean": round(float(np.mean(scores)), 4), "worst": round(min(scores), 4)}
    return out


def battery(cascade, reference, repeats, rng, per_set: int) -> dict:
    batteries = report_batteries()
    unknown = [
        p
        for name in ("shoes", "clothes", "trash")
        for p in iter_image_files(DATA / "garbage12-other" / name)
    ]
    clean: list[tuple[str, str, Path]] = []  # (set, truth, photo)
    for name, folder in (
        ("trashnet", ROOT / "work" / "trashnet-split" / "TEST"),
        ("kaggle", ROOT / "work" / "kaggle-or-split" / "TEST"),
    ):
        photos = [
            (name, sub.name, p)
            for sub in sorted(folder.iterdir())
            if sub.is_dir() and sub.name != "trash"
            for p in iter_image_files(sub)
        ]
        rng.shuffle(photos)
        clean += photos[:per_set]
    materials = set(cascade.stage2.labels)

    def right(labels: list[str]) -> dict:
        ok = [
            (label == "organic")
            if truth == "O"
            else (label in materials)
            if truth == "R"
            else label == truth
            for label, (_, truth, _) in zip(labels, clean, strict=True)
        ]
        return {
            name: float(np.mean([o for o, c in zip(ok, clean, strict=True) if c[0] == name]))
            for name in ("trashnet", "kaggle")
        }

    bat = describe(cascade, [read_rgb(p) for p in batteries], "battery photos")
    other = describe(cascade, [read_rgb(p) for _, _, p in clean], "clean test photos")
    strange = describe(cascade, [read_rgb(p) for p in unknown], "unknown items")
    base_other = [r.label for r in other]
    base_right = right(base_other)
    out: dict = {
        "battery_photos": len(bat),
        "clean_photos": len(other),
        "unknown_photos": len(strange),
        "clean_base_accuracy": {k: round(v, 4) for k, v in base_right.items()},
    }
    for k in KS:
        named, changed, delta, strange_named = [], [], [], []
        for _ in range(repeats):
            idx = list(range(len(bat)))
            rng.shuffle(idx)
            taught, rest = idx[:k], idx[k:]
            head = fit(
                cascade,
                reference,
                [bat[i] for i in taught],
                ["battery"] * k,
                {"battery": Bin.HAZARDOUS},
            )
            got = labels_with(head, cascade, [bat[i] for i in rest])
            named.append(float(np.mean(np.array(got) == "battery")))
            now = labels_with(head, cascade, other)
            changed.append(float(np.mean(np.array(now) != np.array(base_other))))
            now_right = right(now)
            strange_named.append(
                float(np.mean(np.array(labels_with(head, cascade, strange)) == "battery"))
            )
            delta.append({k: now_right[k] - base_right[k] for k in now_right})
        out[f"k={k}"] = {
            "battery_named": round(float(np.mean(named)), 4),
            "battery_worst": round(min(named), 4),
            "clean_changed": round(float(np.mean(changed)), 4),
            "clean_changed_worst": round(max(changed), 4),
            "clean_accuracy_change": {
                k: round(float(np.mean([d[k] for d in delta])), 4) for k in base_right
            },
            "unknown_named_battery": round(float(np.mean(strange_named)), 4),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--clean-per-set", type=int, default=300)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    cascade = Cascade(args.models, backend="litert")
    reference = None if args.no_reference else Reference.load(cascade)
    rng = random.Random(0)
    start = time.time()
    report = {
        "models": cascade.model_version,
        "reference": reference is not None,
        "repeats": args.repeats,
        "labtrash": labtrash(cascade, reference, args.repeats, rng),
        "battery": battery(cascade, reference, args.repeats, rng, args.clean_per_set),
    }
    report["seconds"] = round(time.time() - start, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
