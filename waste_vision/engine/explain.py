"""Where the model looked: occlusion sensitivity, a few patches per frame.

A patch of the crop is greyed out and the crop classified again; how much the probability
of the region's label drops is that patch's importance. It needs nothing but the shipped
models (the kiosk bundle has no TensorFlow, so no gradients), and the cost is bounded: each
frame scores only ``patches_per_frame`` patches of one region (about one model call each),
so a 4x4 map of an item is refreshed every 8 frames at 2 patches a frame while the live
rate stays above 20 FPS. Maps are kept per item (or zone) and shown until they are redone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from waste_vision.labels import UNCERTAIN
from waste_vision.model.cascade import Cascade, CascadeResult, DecisionRule

GREY = 127


def label_probability(result: CascadeResult, label: str, materials: list[str]) -> float:
    """P(label) under the cascade: P(organic), or P(recyclable) x P(material)."""
    s1, s2 = result.stage1, result.stage2
    if label in ("organic", "recyclable"):
        return s1.probabilities[0 if label == "organic" else 1]
    if s2 is None:
        return 0.0
    return s1.probabilities[1] * s2.probabilities[materials.index(label)]


@dataclass
class _Progress:
    label: str
    base: float
    scores: np.ndarray
    next_cell: int = 0


@dataclass
class OcclusionExplainer:
    """Builds and keeps an occlusion map (grid x grid, 0..1) per region key."""

    cascade: Cascade
    grid: int = 4
    patches_per_frame: int = 2
    maps: dict = field(default_factory=dict)  # key -> finished map (grid x grid)
    _work: dict = field(default_factory=dict)  # key -> _Progress
    _turn: int = 0

    @property
    def _materials(self) -> list[str]:
        return self.cascade.stage2.labels

    def update(
        self,
        crops: list[tuple[object, np.ndarray, CascadeResult]],
        rule: DecisionRule | None = None,
    ) -> None:
        """Advance the map of one region (taking turns) by a few patches.

        ``crops``: this frame's (key, crop, result) triples; ``rule``: the decision rule they
        were classified under (the frame's ``PipelineConfig.thresholds``; None: the
        cascade's own), which the occluded copies are classified under too, with both
        stages run, so a material's probability is there whatever stage 1 says.
        """
        if not crops:
            return
        keys = {k for k, _, _ in crops}
        for gone in set(self.maps) - keys:
            self.maps.pop(gone, None)
        for gone in set(self._work) - keys:
            self._work.pop(gone, None)
        self._turn = (self._turn + 1) % len(crops)
        key, crop, result = crops[self._turn]
        label = (
            result.label
            if result.label != UNCERTAIN
            else (result.stage2.label if result.stage2 else result.stage1.label)
        )
        if label == "recyclable" and result.stage2 is not None:
            label = result.stage2.label
        work = self._work.get(key)
        if work is None or work.label != label:
            work = _Progress(
                label,
                label_probability(result, label, self._materials),
                np.zeros(self.grid * self.grid, np.float32),
            )
            self._work[key] = work
        h, w = crop.shape[:2]
        occluded = []
        cells = []
        for _ in range(self.patches_per_frame):
            if work.next_cell >= self.grid * self.grid:
                break
            cell = work.next_cell
            work.next_cell += 1
            r, c = divmod(cell, self.grid)
            y0, y1 = r * h // self.grid, (r + 1) * h // self.grid
            x0, x1 = c * w // self.grid, (c + 1) * w // self.grid
            image = crop.copy()
            image[y0:y1, x0:x1] = GREY
            occluded.append(image)
            cells.append(cell)
        for cell, res in zip(
            cells, self.cascade.classify_many(occluded, all_stages=True, rule=rule), strict=False
        ):
            work.scores[cell] = max(0.0, work.base - label_probability(res, label, self._materials))
        if work.next_cell >= self.grid * self.grid:
            scores = work.scores.reshape(self.grid, self.grid)
            top = float(scores.max())
            self.maps[key] = scores / top if top > 1e-6 else scores
            self._work[key] = _Progress(label, work.base, np.zeros_like(work.scores))
