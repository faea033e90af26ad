"""The field suite with test-time flips: every image and its mirror image through the fused
model, the two stages' probabilities and the embeddings averaged, then the cascade's own rule.

Why: issue 20 asks whether test-time flips pay on the field suite. They double the model's
cost per frame (two passes), so they could ship only on the int8 model; this measures what
they would buy before anyone builds that.

    python tools/field_tta.py --models models --out work/field-tta
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from waste_vision.model.cascade import _stage_result, decide
from waste_vision.training import field


def flip_averaged(cascade, images):
    """``field.run_cascade`` with each image's mirror image averaged in."""
    p1, p2, final = [], [], []
    rule = cascade.rule
    spec1, spec2 = cascade.manifest.stages
    for i in range(0, len(images), 16):
        batch = list(images[i : i + 16])
        both = cascade.classify_many(batch + [im[:, ::-1].copy() for im in batch], True)
        for a, b in zip(both[: len(batch)], both[len(batch) :], strict=True):
            q1 = (a.stage1.probabilities[1] + b.stage1.probabilities[1]) / 2
            q2 = (np.asarray(a.stage2.probabilities) + np.asarray(b.stage2.probabilities)) / 2
            e = None if a.embedding is None else (a.embedding + b.embedding) / 2
            s1 = _stage_result(spec1, np.array([q1]), rule.stage1_threshold)
            s2 = _stage_result(spec2, q2)
            final.append(decide(rule, s1, s2, e).label)
            p1.append(q1)
            p2.append(q2)
    return np.asarray(p1), np.asarray(p2), final


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", type=Path, default=Path("models"))
    p.add_argument("--out", type=Path, default=Path("work/field-tta"))
    p.add_argument("--material-data", type=Path, default=Path("work/trashnet-split"))
    p.add_argument("--material-extra", type=Path, action="append", default=None)
    p.add_argument("--stage1-data", type=Path, default=Path("work/kaggle-or-split"))
    p.add_argument("--labtrash", type=Path, default=Path("../shared/datasets/labtrash"))
    p.add_argument("--other", type=Path, default=Path("../shared/datasets/garbage12-other"))
    args = p.parse_args(argv)
    extra = args.material_extra or [Path("work/garbage12-split")]
    report = field.field_report(
        args.models,
        args.material_data,
        extra,
        args.stage1_data,
        args.labtrash,
        args.other,
        run=flip_averaged,
    )
    report["test_time_flips"] = True
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "field.json").write_text(json.dumps(report, indent=1))
    print(
        json.dumps({"parts": report["parts"], "mean": report["mean"], "stage1": report["stage1"]})
    )


if __name__ == "__main__":
    main()
