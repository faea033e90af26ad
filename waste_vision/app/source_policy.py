"""What plays at launch, decided without a window: plain functions the window calls.

The rule: the source asked for (``--source``); else the last source that delivered a frame,
if it can still be reached; else the first camera that opens; else the bundled demo clip,
looping, with a notice (not remembered, so a camera plugged in later wins). Cameras are
probed in the background first, and a camera is only opened once the probe has answered, so
the probe and the camera never open the same device at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from waste_vision.engine.sources import STREAM_PREFIXES


def is_camera(spec: str | None) -> bool:
    return spec is not None and str(spec).strip().isdigit()


def is_stream(spec: str | None) -> bool:
    return spec is not None and str(spec).strip().lower().startswith(STREAM_PREFIXES)


@dataclass(frozen=True)
class Choice:
    """``open``: play ``spec`` now; ``wait``: decide once the camera probe has answered
    (``spec`` is the camera wanted, or None for "the first camera, else the demo")."""

    action: str  # "open" or "wait"
    spec: str | None = None


def at_launch(
    asked: str | None, last: str | None, exists=lambda p: Path(p).expanduser().exists()
) -> Choice:
    """The launch choice before the cameras are known."""
    if asked is None and last:
        if is_camera(last):
            return Choice("wait", last)
        if is_stream(last) or exists(last):
            asked = last
    if asked is not None and not is_camera(asked):
        return Choice("open", asked)
    return Choice("wait", asked)


def after_probe(wanted: str | None, cameras: list[int]) -> str | None:
    """The source once the probe answered: the camera wanted, else the first one found;
    None means the demo clip."""
    if wanted is not None:
        return wanted
    return str(cameras[0]) if cameras else None
