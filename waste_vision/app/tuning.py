"""Changing the cascade's thresholds while it runs.

``uncertain_below`` is a plain attribute. Stage 1's threshold lives in a frozen
``StageSpec`` that the cascade reads per frame (``stage1`` on the fused path,
``manifest.stages[0]`` on the per-stage path), so a copy with the new threshold is swapped
into both places; each is one attribute/item assignment, atomic for the pipeline thread.
"""

from __future__ import annotations

from dataclasses import replace

from waste_vision.cascade import Cascade


def stage1_threshold(cascade: Cascade) -> float:
    return cascade.stage1.threshold


def set_stage1_threshold(cascade: Cascade, value: float) -> None:
    value = min(max(float(value), 0.001), 0.999)
    spec = replace(cascade.stage1, threshold=value)
    cascade.manifest.stages[0] = spec
    cascade.stage1 = spec


def set_uncertain_below(cascade: Cascade, value: float) -> None:
    cascade.uncertain_below = min(max(float(value), 0.0), 1.0)


def backend_text(cascade: Cascade) -> str:
    """What the window shows as the backend, e.g. ``LiteRT (fused)``."""
    name = {"litert": "LiteRT", "keras": "Keras"}.get(cascade.backend, cascade.backend)
    return f"{name} (fused)" if getattr(cascade, "uses_fused", False) else name
