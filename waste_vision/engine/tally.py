"""Counts per class, and the counting rule for when there are no items to follow.

With item finding on (the default), ``waste_vision.engine.items.ItemTracker`` counts each item
once however long it stays. Classifying the whole frame or drawn zones, there are no items
to follow, so ``Tally.update`` counts from the stream of per-frame verdicts. Both run in the
pipeline (``FrameClassifier``), which reports what it counted per frame; the window and
``annotate --summary`` only add it up (``add``). A ``Tally`` is not thread-safe: the
pipeline's is used by the pipeline thread only (other threads ask for a break through the
configuration, ``PipelineConfig.item_epoch``).

The verdict rule: a classifier flickers between frames, so a frame is not an item. A verdict counts
as an item once it has stayed the same for ``stable_s`` (0.5 s, by capture time) and differs
from the last item counted. So one bottle held in view counts once however long it stays,
a one-frame flicker counts nothing, and glass then plastic counts both. ``uncertain`` held
that long is not counted but ends the current item, so two plastic bottles with an empty
(uncertain) view between them count twice; without such a gap, two same-class items in a
row count once (there is no way to tell them apart from one item).
"""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from waste_vision.labels import UNCERTAIN

STABLE_S = 0.5


class Tally:
    """Per-class counts of items seen; ``update`` once per displayed verdict."""

    def __init__(self, classes: list[str], stable_s: float = STABLE_S):
        self.classes = list(classes)
        self.stable_s = stable_s
        self.counts: Counter[str] = Counter()
        self.last_counted: str | None = None
        self._candidate: str | None = None
        self._since = 0.0
        self._settled = False  # the candidate has been judged (counted or not)

    @property
    def total(self) -> int:
        return self.counts.total()

    def update(self, label: str | None, t: float) -> str | None:
        """Feed the verdict shown at time ``t`` (seconds); returns the label if it counted."""
        if label != self._candidate:
            self._candidate, self._since, self._settled = label, t, False
            return None
        if self._settled or label is None or t - self._since < self.stable_s:
            return None
        self._settled = True
        if label == UNCERTAIN:
            self.last_counted = None  # a gap between items
            return None
        if label == self.last_counted:
            return None
        self.counts[label] += 1
        self.last_counted = label
        return label

    def add(self, labels: Iterable[str]) -> bool:
        """Count items the pipeline counted (item finding); True if anything changed."""
        labels = list(labels)
        self.counts.update(labels)
        return bool(labels)

    def break_item(self) -> None:
        """Other zones, another mode or another source: the next stable verdict starts a new
        item."""
        self._candidate, self._settled, self.last_counted = None, False, None

    def reset(self) -> None:
        self.counts.clear()
        self.break_item()

    def rows(self) -> list[tuple[str, int]]:
        """Every known class (zeros included) in a fixed order, then any other label seen."""
        extra = sorted(set(self.counts) - set(self.classes))
        return [(c, self.counts.get(c, 0)) for c in self.classes + extra]

    def export_csv(self, path: Path) -> None:
        """``class,count`` lines, one per class; raises OSError if the file cannot be written."""
        with open(path, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["class", "count"])
            writer.writerows(self.rows())
