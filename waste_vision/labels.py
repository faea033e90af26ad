"""The names every layer shares, defined once: the cascade's abstention, the empty verdict,
what a frame's regions are (``Mode``), what one region is (``RegionKind``) and the bin a
label belongs in (``Bin``).

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


class Bin(StrEnum):
    """The bin an item goes in. The base classes are organic or recyclable; a class taught
    at a site (a site profile) names its own, e.g. ``battery`` -> hazardous."""

    ORGANIC = "organic"
    RECYCLABLE = "recyclable"
    RESIDUAL = "residual"
    HAZARDOUS = "hazardous"


def base_bin(label: str) -> Bin | None:
    """The bin of a base cascade label: ``organic`` or, for any material, ``recyclable``;
    None for ``uncertain`` and ``empty`` (no item, or none we are sure of)."""
    if label in (UNCERTAIN, EMPTY):
        return None
    return Bin.ORGANIC if label == Bin.ORGANIC else Bin.RECYCLABLE
