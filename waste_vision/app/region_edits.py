"""The GUI's edits of the drawn zones, as plain functions: old zones -> new zones.

The zones are part of the pipeline's one immutable configuration (``PipelineConfig.zones``,
a tuple of frozen ``ZoneSpec``); the window builds the new tuple here and hands it over in
one assignment (``LiveSession.set_zones``). The pipeline thread keeps each zone's tracking
state while its spec is unchanged (``RegionSet.sync``), so the GUI never waits for the
pipeline and the pipeline never sees a zone changing under it.

Clicks on the video hit a zone where it is now: a tracking zone may have followed its item
away from where it was drawn. ``placed`` is where the pipeline put each zone on its last
frame (``RegionSet.placed``); a zone it has not placed yet is where it was drawn.
"""

from __future__ import annotations

from collections.abc import Sequence

from waste_vision.engine.frames import Box
from waste_vision.engine.regions import Zones, ZoneSpec

Placed = Sequence[tuple[ZoneSpec, Box | None]]  # each zone's spec and where it is now


def added(zones: Zones, box: Box, track: bool = False) -> Zones:
    return (*zones, ZoneSpec(box, track))


def without_last(zones: Zones) -> Zones:
    return zones[:-1]


def tracking(zones: Zones, on: bool) -> Zones:
    """Every zone follows its item (on) or stays where it was drawn (off). A zone whose
    setting changes is a new zone to the pipeline (``RegionSet.sync``) and starts again from
    where it was drawn; one already set so is the same spec and keeps where it is now."""
    return tuple(ZoneSpec(z.home, on) for z in zones)


def where_now(zones: Zones, placed: Placed) -> list[Box]:
    """Each zone's box now: where the pipeline last put the zone with its spec (``placed``,
    matched by spec and taken in order, as ``RegionSet.sync`` keeps zones), else where it was
    drawn. So a zone keeps its place when an earlier one is removed, and after a run stops
    (``placed`` is then its last frame's)."""
    at: dict[ZoneSpec, list[Box | None]] = {}
    for spec, box in placed:
        at.setdefault(spec, []).append(box)
    return [(at[z].pop(0) if at.get(z) else None) or z.home for z in zones]


def zone_at(zones: Zones, placed: Placed, x: float, y: float) -> int | None:
    """The index of the most recently added zone whose current box holds (x, y)."""
    boxes = where_now(zones, placed)
    for i in reversed(range(len(zones))):
        bx, by, bw, bh = boxes[i]
        if bx <= x < bx + bw and by <= y < by + bh:
            return i
    return None


def removed_at(zones: Zones, placed: Placed, x: float, y: float) -> Zones:
    """Without the newest zone at (x, y) (the same zones where there is none)."""
    i = zone_at(zones, placed, x, y)
    return zones if i is None else zones[:i] + zones[i + 1 :]


def toggled_at(zones: Zones, placed: Placed, x: float, y: float) -> Zones:
    """The newest zone at (x, y) starts or stops following its item (from where it was
    drawn)."""
    i = zone_at(zones, placed, x, y)
    if i is None:
        return zones
    zone = zones[i]
    return (*zones[:i], ZoneSpec(zone.home, not zone.track), *zones[i + 1 :])
