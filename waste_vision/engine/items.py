"""Items over time: found boxes followed from frame to frame, each counted once.

A box found in one frame is matched to the item whose last box overlaps it most (IoU),
otherwise it starts a new item. An item is **counted** once it has been present and steady
(its box moving less than ``steady_iou`` between frames) for ``steady_s`` seconds of capture
time, under the label most of its steady frames had (``uncertain`` frames abstain; an item
whose frames were all uncertain is not counted). It stays counted however long it stays;
it ends when it has not been seen for ``gone_s``, so the same item put back later counts
again. Two items side by side are two items. The rule works on capture timestamps, so it
behaves the same live and in ``annotate``.

Memory stays bounded however long it runs (a kiosk runs for months): items that left are
kept only if counted, and only the last ``keep`` of them (``deque``); the totals live in
``tally`` and ``counted_total``.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from waste_vision.engine.frames import Box, iou, overlap_of_smaller
from waste_vision.labels import UNCERTAIN

__all__ = ["KEEP_ITEMS", "Item", "ItemTracker", "iou"]  # iou: where callers found it before

KEEP_ITEMS = 1000  # counted items that left, kept for the summary (the oldest are dropped)


@dataclass
class Item:
    id: int
    box: Box
    first_t: float
    last_t: float
    steady_since: float
    votes: Counter = field(default_factory=Counter)  # labels seen while steady
    label: str | None = None  # the label it was counted under, once counted
    counted_box: Box | None = None  # where it stood when it was counted

    @property
    def counted(self) -> bool:
        return self.label is not None

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "first_s": round(self.first_t, 3),
            "last_s": round(self.last_t, 3),
            "box": list(self.counted_box or self.box),
        }


class ItemTracker:
    """Matches found boxes to items, counts each item once; ``update`` once per frame."""

    def __init__(
        self,
        steady_s: float = 0.5,
        gone_s: float = 0.6,
        match_iou: float = 0.25,
        steady_iou: float = 0.8,
        keep: int = KEEP_ITEMS,
    ):
        self.steady_s, self.gone_s = steady_s, gone_s
        self.match_iou, self.steady_iou = match_iou, steady_iou
        self.present: list[Item] = []  # bounded by the scene's max_items (+ those fading)
        self.finished: deque[Item] = deque(maxlen=keep)  # the last counted items that left
        self.tally: Counter[str] = Counter()  # every item counted, however many are still held
        self._next_id = 1
        self._matched: list[Item] = []  # match() -> count(): this frame's items, in order

    def update(self, t: float, found: list[tuple[Box, str]]) -> tuple[list[int], list[str]]:
        """Feed a frame's (box, label) pairs at capture time ``t``.

        Returns each pair's item id (in the order given) and the labels counted now.
        """
        ids = self.match(t, [box for box, _ in found])
        return ids, self.count(t, [label for _, label in found])

    def match(self, t: float, boxes: list[Box]) -> list[int]:
        """First half of ``update``: each box's item id (new items get new ids), known before
        the boxes are classified, so a result can be kept per item (``reuse.ResultCache``).
        ``count`` must follow with the labels, in the same order."""
        if any(t < item.last_t for item in self.present):  # the clock went back: a file looped
            self._finish(self.present)
            self.present = []
        unmatched = list(self.present)
        self._matched = []
        for box in boxes:
            best = max(unmatched, key=lambda it: iou(it.box, box), default=None)
            if best is None or iou(best.box, box) < self.match_iou:
                best = Item(self._next_id, box, t, t, t)
                self._next_id += 1
                self.present.append(best)
            else:
                unmatched.remove(best)
                if iou(best.box, box) < self.steady_iou:  # moving: steadiness starts again
                    best.steady_since = t
                    if not best.counted:
                        best.votes.clear()
                best.box, best.last_t = box, t
            self._matched.append(best)
        return [item.id for item in self._matched]

    def count(self, t: float, labels: list[str]) -> list[str]:
        """Second half of ``update``: the labels of the boxes given to ``match``; returns the
        labels counted now, and ends the items not seen for ``gone_s``."""
        counted: list[str] = []
        for best, label in zip(self._matched, labels, strict=False):
            if not best.counted:
                if label != UNCERTAIN:
                    best.votes[label] += 1
                if t - best.steady_since >= self.steady_s and best.votes:
                    best.label = best.votes.most_common(1)[0][0]
                    best.counted_box = best.box
                    self.tally[best.label] += 1
                    counted.append(best.label)
        self._matched = []
        self._end_gone(t)
        return counted

    def _end_gone(self, t: float) -> None:
        gone = [item for item in self.present if t - item.last_t > self.gone_s]
        if gone:
            self.present = [item for item in self.present if item not in gone]
            self._finish(gone)

    def _finish(self, items: list[Item]) -> None:
        self.finished.extend(i for i in items if i.counted)  # uncounted ones say nothing

    def add_counted(self, t: float, box: Box, label: str) -> None:
        """Count an item that was never followed: one learnt into the empty scene that has
        now left (``EmptyScene.healed``); it is recorded as an item that came and went."""
        item = Item(self._next_id, box, t, t, t, label=label, counted_box=box)
        self._next_id += 1
        self.finished.append(item)
        self.tally[label] += 1

    @property
    def counted_total(self) -> int:
        """Every item counted, however many ``finished`` still holds."""
        return self.tally.total()

    def counted_near(self, box: Box, since: float, overlap: float = 0.3) -> bool:
        """Was an item counted at ``box`` (intersection over the smaller box >= ``overlap``)
        that was still seen at or after time ``since``?"""
        for item in list(self.present) + list(self.finished):
            if not item.counted or item.last_t < since:
                continue
            for b in {item.counted_box or item.box, item.box}:
                if overlap_of_smaller(b, box) >= overlap:
                    return True
        return False

    def items(self) -> list[Item]:
        """The counted items still held (the last ``keep`` that left, and those present),
        in the order they appeared."""
        return sorted(
            [i for i in self.finished if i.counted] + [i for i in self.present if i.counted],
            key=lambda i: i.id,
        )
