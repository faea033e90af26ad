"""Region parsing, clamping to any frame size, fixed zones and zones that follow an item."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from waste_vision.engine.regions import RegionSet, ZoneSpec, clamp_box, parse_box
from waste_vision.errors import UserError


def test_parse_box():
    assert parse_box("10,20,30,40") == (10, 20, 30, 40)
    for bad in ("10,20,30", "a,b,c,d", "0,0,0,5"):
        with pytest.raises(UserError, match="region"):
            parse_box(bad)


@pytest.mark.parametrize(
    "box, size, expected",
    [
        ((0, 0, 100, 100), (640, 480), (0, 0, 100, 100)),
        ((600, 400, 200, 200), (640, 480), (600, 400, 40, 80)),
        ((-50, -50, 100, 100), (640, 480), (0, 0, 50, 50)),
        ((0, 0, 1280, 720), (320, 240), (0, 0, 320, 240)),
        ((1000, 1000, 50, 50), (640, 480), None),
        ((0, 0, 5000, 5000), (3, 2), (0, 0, 3, 2)),
    ],
)
def test_clamp_box(box, size, expected):
    assert clamp_box(box, *size) == expected


def test_a_zone_never_moves_whatever_is_found():
    regions = RegionSet((ZoneSpec((50, 60, 40, 40)),))
    image = np.zeros((240, 320, 3), np.uint8)
    for x in range(0, 200, 10):  # an item passing through, found each frame
        assert regions.boxes(image, [(x, 60, 40, 40)]) == [(50, 60, 40, 40)]


def test_a_tracking_zone_follows_its_item_and_goes_home_when_it_leaves():
    regions = RegionSet((ZoneSpec((50, 60, 40, 40), track=True),))
    image = np.zeros((240, 320, 3), np.uint8)
    for step in range(12):  # the item slides right; the zone follows it
        x = 50 + 8 * step
        (box,) = regions.boxes(image, [(x, 60, 40, 40), (250, 180, 30, 30)])
        assert box == (x, 60, 40, 40)
    for _ in range(regions.regions[0].home_after):  # the item is taken away
        (box,) = regions.boxes(image, [(250, 180, 30, 30)])
    assert box == (50, 60, 40, 40)  # back where it was drawn, not drifting
    regions.sync((ZoneSpec((50, 60, 40, 40), track=False),))
    assert regions.boxes(image, [(120, 60, 40, 40)]) == [(50, 60, 40, 40)]


def test_whole_frame_when_no_regions_and_boxes_clamped_to_smaller_frames():
    regions = RegionSet()
    assert regions.boxes(np.zeros((10, 20, 3), np.uint8)) == [(0, 0, 20, 10)]
    regions.sync((ZoneSpec((0, 0, 1279, 719)),))
    assert regions.boxes(np.zeros((100, 200, 3), np.uint8)) == [(0, 0, 200, 100)]
    assert regions.placed == ((ZoneSpec((0, 0, 1279, 719)), (0, 0, 200, 100)),)


def test_zone_specs_are_frozen_and_normalised():
    spec = ZoneSpec((10.0, 20, 30, 40), track=1)  # type: ignore[arg-type]
    assert spec == ZoneSpec((10, 20, 30, 40), True) and type(spec.home[0]) is int
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.track = False  # type: ignore[misc]
    assert {spec: 1}[ZoneSpec((10, 20, 30, 40), True)] == 1  # hashable: a dict key


def test_sync_keeps_the_tracking_state_of_unchanged_zones_only():
    """A new configuration's zones: a zone whose spec is unchanged keeps where it has
    followed its item to; a changed one starts again where it was drawn; a removed one
    goes, and the order is the new configuration's."""
    image = np.zeros((240, 320, 3), np.uint8)
    a, b = ZoneSpec((50, 60, 40, 40), track=True), ZoneSpec((200, 150, 40, 40), track=True)
    regions = RegionSet((a, b))
    found = [(74, 60, 40, 40), (224, 150, 40, 40)]  # each item moved right by 24 px
    assert regions.boxes(image, found) == found
    zone_a = regions.regions[0]
    regions.sync((a, b))  # the same specs: nothing changes
    assert regions.regions[0] is zone_a and [z.spec for z in regions.regions] == [a, b]
    fixed_b = ZoneSpec(b.home, track=False)
    regions.sync((fixed_b, a))  # b changed (no longer tracking), and now comes first
    assert regions.regions[1] is zone_a and zone_a.box == (74, 60, 40, 40)
    assert regions.regions[0].box == b.home and regions.regions[0].missing == 0
    assert regions.boxes(image, []) == [b.home, (74, 60, 40, 40)]
    regions.sync((a,))  # b removed
    assert regions.regions == [zone_a] and regions.placed == ((a, (74, 60, 40, 40)),)
    twin = RegionSet((a, a))  # two identical zones are two zones
    assert len(twin.regions) == 2 and twin.regions[0] is not twin.regions[1]
