"""Plot a joint fine-tuning run's validation, epoch by epoch, against the models it replaced.

Usage: ``python tools/plot_joint.py MODELS BEFORE.json OUT.png`` where MODELS holds the joint
run's stage summaries (their ``joint.history``, chained through ``continues``) and BEFORE.json
is ``{"organic-recyclable": {"acc": .., "loss": ..}, "material": {...}}`` for the frozen-trunk
models.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def history(summary: dict) -> list[dict]:
    """Epochs of every chained run, numbered on from each other (a run's epoch 0 is the
    previous run's end, so it is dropped)."""
    runs, joint = [], summary["joint"]
    while joint:
        runs.insert(0, joint["history"])
        joint = joint.get("continues")
    rows, offset = [], 0
    for i, run in enumerate(runs):
        for row in run[(1 if i else 0) :]:
            rows.append({**row, "epoch": row["epoch"] + offset})
        offset = rows[-1]["epoch"]
    return rows


def main(models: Path, before: Path, out: Path) -> None:
    rows = history(json.loads((models / "stage2_material.json").read_text()))
    base = json.loads(before.read_text())
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, metric, title in (
        (axes[0], "acc", "validation accuracy"),
        (axes[1], "loss", "validation cross-entropy"),
    ):
        for stage, colour in (("organic-recyclable", "tab:green"), ("material", "tab:blue")):
            epochs = [r["epoch"] for r in rows]
            ax.plot(
                epochs,
                [r[f"{stage}_{metric}"] for r in rows],
                "o-",
                color=colour,
                label=f"{stage}, trunk tuned",
            )
            ax.axhline(
                base[stage][metric], color=colour, ls="--", lw=1, label=f"{stage}, frozen trunk"
            )
        ax.set_title(title)
        ax.set_xlabel("epoch (one pass over the material photos)")
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0.82, 1.0)
    axes[1].legend(fontsize=8)
    fig.suptitle("Joint fine-tuning of the shared trunk (blocks 4-14), 2 CPU cores")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
