"""A region's last result, reused while what it shows has not changed.

A camera over a table mostly sees the same thing frame after frame: the item lies still, the
zone holds the same bottle. Classifying it again gives the same answer at the price of a model
call (~8 ms of the ~16 ms a 720p frame costs on 2 cores). So each region (a zone, a found item,
the whole frame: the caller's key) keeps a thumbnail of the crop it was last classified on and
that result. The result is reused while

- the crop's thumbnail differs from that one by less than ``threshold`` (mean absolute
  difference, 0-255 per channel; camera noise measures ~0.1 on the demo clip, an item sliding
  into view 1.5-5 per frame),
- the result is younger than ``max_age_s`` on the frame clock (a file's own clock, so a clip
  gives the same results at any processing speed), so slow changes are caught within that time
  (one region comes due per frame: the others wait a frame each, so refreshes spread out),
- and the decision rule is the one it was made under (``PipelineConfig.thresholds``: the
  window's sliders).

The same rule holds in every mode, so speed comparisons between modes stay fair; with
``FrameClassifier(reuse=False)`` (``--classify-every-frame``) every crop is classified.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from waste_vision.model.cascade import Cascade, CascadeResult, DecisionRule

THUMB = 16  # thumbnail side, pixels
SAMPLE = 128  # the crop is sampled at about this many pixels a side before the area filter


def thumbnail(crop: np.ndarray, size: int = THUMB) -> np.ndarray:
    """The crop at ``size`` x ``size`` (float32, colour) from a strided sample: a fraction of a
    millisecond even for a whole 720p frame, yet ~64 pixels averaged per cell, so camera noise
    shrinks ~8x and stays well below what an item moving or arriving changes."""
    h, w = crop.shape[:2]
    step = max(1, min(h, w) // SAMPLE)
    sample = crop[::step, ::step].astype(np.float32)  # float: no rounding noise in the cells
    return cv2.resize(sample, (size, size), interpolation=cv2.INTER_AREA)


@dataclass
class _Entry:
    thumb: np.ndarray
    result: CascadeResult
    t: float  # frame clock when classified
    rule: DecisionRule
    all_stages: bool


class ResultCache:
    """Per-region results and thumbnails; ``classify`` once per frame with all its regions."""

    def __init__(self, threshold: float = 1.0, max_age_s: float = 0.25):
        self.threshold = threshold
        self.max_age_s = max_age_s
        self._entries: dict[Hashable, _Entry] = {}
        self.classified = 0  # crops run through the cascade
        self.reused = 0  # crops answered from here

    def classify(
        self,
        cascade: Cascade,
        t: float,
        keys: Sequence[Hashable],
        crops: Sequence[np.ndarray],
        all_stages: bool = False,
        rule: DecisionRule | None = None,
    ) -> list[CascadeResult]:
        """Each crop's result under ``rule`` (None: the cascade's own): reused where its
        region's content is unchanged, the others in one batched ``cascade.classify_many``
        call. Regions not in ``keys`` are forgotten."""
        rule = rule or cascade.rule
        thumbs = [thumbnail(c) for c in crops]
        results: list[CascadeResult | None] = [None] * len(crops)
        todo, aged = [], []
        for i, (key, thumb) in enumerate(zip(keys, thumbs, strict=False)):
            entry = self._entries.get(key)
            same = (
                entry is not None
                and t >= entry.t  # (a looped file's clock goes back)
                and entry.rule == rule
                and entry.all_stages == all_stages
                and float(np.mean(np.abs(thumb - entry.thumb))) < self.threshold
            )
            if entry is None or not same:
                todo.append(i)
            elif t - entry.t < self.max_age_s:
                results[i] = entry.result
            else:
                aged.append(i)
        # unchanged but old: the oldest is refreshed, the others keep their result one frame
        # more, so regions classified together do not all come due again on the same frame
        # (two at once cost twice one: the live latency's tail)
        aged.sort(key=lambda i: self._entries[keys[i]].t)
        for i in aged[1:]:
            results[i] = self._entries[keys[i]].result
        todo += aged[:1]
        if todo:
            for i, result in zip(
                todo,
                cascade.classify_many([crops[i] for i in todo], all_stages, rule=rule),
                strict=False,
            ):
                results[i] = result
                self._entries[keys[i]] = _Entry(thumbs[i], result, t, rule, all_stages)
        for gone in set(self._entries) - set(keys):
            del self._entries[gone]
        self.classified += len(todo)
        self.reused += len(crops) - len(todo)
        done = [r for r in results if r is not None]
        assert len(done) == len(results), "every crop is either reused or classified"
        return done

    def clear(self) -> None:
        self._entries.clear()
