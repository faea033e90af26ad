"""What the window shows about the cascade it runs.

Thresholds are changed through ``Cascade.set_thresholds`` (the one decision rule).
"""

from __future__ import annotations

from waste_vision.cascade import Cascade


def backend_text(cascade: Cascade) -> str:
    """What the window shows as the backend, e.g. ``LiteRT (fused)``."""
    name = {"litert": "LiteRT", "keras": "Keras"}.get(cascade.backend, cascade.backend)
    return f"{name} (fused)" if getattr(cascade, "uses_fused", False) else name
