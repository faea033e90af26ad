"""What plays at launch, decided without a window: plain functions the window calls.

The rule: the source asked for (``--source``); else the last source that delivered a frame,
if it can still be reached; else the first camera that opens; else the bundled demo clip,
looping, with a notice (not remembered, so a camera plugged in later wins). Cameras are
probed in the background first, and a camera is only opened once the probe has answered, so
the probe and the camera never open the same device at once.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from waste_vision.engine.sources import is_camera, is_stream

__all__ = ["Action", "Choice", "after_probe", "at_launch", "is_camera", "is_stream"]


class Action(enum.StrEnum):
    OPEN = "open"  # play the spec now
    WAIT = "wait"  # decide once the camera probe has answered


@dataclass(frozen=True)
class Choice:
    """``open``: play ``spec`` now; ``wait``: decide once the camera probe has answered
    (``spec`` is the camera wanted, or None for "the first camera, else the demo")."""

    action: Action
    spec: str | None = None


def _exists(path: str) -> bool:
    return Path(path).expanduser().exists()


def at_launch(
    asked: str | None, last: str | None, exists: Callable[[str], bool] = _exists
) -> Choice:
    """The launch choice before the cameras are known."""
    if asked is None and last:
        if is_camera(last):
            return Choice(Action.WAIT, last)
        if is_stream(last) or exists(last):
            asked = last
    if asked is not None and not is_camera(asked):
        return Choice(Action.OPEN, asked)
    return Choice(Action.WAIT, asked)


def after_probe(wanted: str | None, cameras: list[int]) -> str | None:
    """The source once the probe answered: the camera wanted, else the first one found;
    None means the demo clip."""
    if wanted is not None:
        return wanted
    return str(cameras[0]) if cameras else None
