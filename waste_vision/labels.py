"""The names every layer shares, defined once: the cascade's abstention, the empty verdict,
what a frame's regions are (``Mode``) and what one region is (``RegionKind``).

Kept apart from ``cascade`` and the engine so the records, the counting rules, the overlay
and the command line parser can name them without importing the model code, numpy or OpenCV.
The enums are ``StrEnum``: equal to, printed as and written to JSON as the plain strings
they replace.
"""

from __future__ import annotations

from enum import StrEnum

UNCERTAIN = "uncertain"  # the cascade's label when no stage is sure enough
EMPTY = "empty"  # the verdict when item finding sees nothing on the table


class Mode(StrEnum):
    """What a frame's regions are: the items found, the zones drawn, or the whole frame."""

    ITEMS = "items"
    ZONES = "zones"
    FRAME = "frame"


FIND_MODES = (Mode.ITEMS, Mode.FRAME)  # what is classified when no zone is drawn (--find)


class RegionKind(StrEnum):
    """What one classified region is: a found item, a drawn zone or the whole frame."""

    ITEM = "item"
    ZONE = "zone"
    FRAME = "frame"
