"""The Lite0-vs-Lite2 field measurement as one picture (issue 20, item 6).

    python tools/plot_lite0_vs_lite2.py [models/reports/field/lite0_vs_lite2.json]

Reads the JSON written from work/backbone-field (docs/field.md) and writes a PNG beside it:
one group of bars per field-suite part, one bar per model.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

NAMES = {
    "lite0": "Lite0, clean tail",
    "lite2": "Lite2, clean tail",
    "lite0-field": "Lite0, field tail",
    "lite2-field": "Lite2, field tail",
}
PARTS = ("labtrash", "blur", "dark", "small", "on_cardboard", "unknown")


def main(path: Path) -> Path:
    report = json.loads(path.read_text())
    models = [n for n in NAMES if n in report["backbones"]]
    x = np.arange(len(PARTS) + 1)
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=110)
    for i, name in enumerate(models):
        b = report["backbones"][name]
        values = [b["parts"][p] for p in PARTS] + [b["field_mean"]]
        bars = ax.bar(x + (i - (len(models) - 1) / 2) * width, values, width, label=NAMES[name])
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.set_xticks(x, [*PARTS, "mean"])
    ax.set_ylabel("% right (unknown: % uncertain)")
    ax.set_ylim(0, 118)
    ax.set_title("Field suite, validation: a bigger backbone vs field training (same recipe)")
    ax.legend(loc="upper center", fontsize=8, ncol=4)
    fig.tight_layout()
    out = path.with_suffix(".png")
    fig.savefig(out)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "models/reports/field/lite0_vs_lite2.json")
    print(f"wrote {main(target)}")
