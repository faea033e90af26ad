"""Region parsing, clamping to any frame size, fixed zones and zones that follow an item."""

from __future__ import annotations

import numpy as np
import pytest

from waste_vision.engine.regions import RegionSet, clamp_box, parse_box
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
    regions = RegionSet()
    regions.add((50, 60, 40, 40))
    image = np.zeros((240, 320, 3), np.uint8)
    for x in range(0, 200, 10):  # an item passing through, found each frame
        assert regions.boxes(image, [(x, 60, 40, 40)]) == [(50, 60, 40, 40)]


def test_a_tracking_zone_follows_its_item_and_goes_home_when_it_leaves():
    regions = RegionSet()
    regions.add((50, 60, 40, 40), track=True)
    image = np.zeros((240, 320, 3), np.uint8)
    for step in range(12):  # the item slides right; the zone follows it
        x = 50 + 8 * step
        (box,) = regions.boxes(image, [(x, 60, 40, 40), (250, 180, 30, 30)])
        assert box == (x, 60, 40, 40)
    for _ in range(regions.regions[0].home_after):  # the item is taken away
        (box,) = regions.boxes(image, [(250, 180, 30, 30)])
    assert box == (50, 60, 40, 40)  # back where it was drawn, not drifting
    regions.set_tracking(False)
    assert regions.boxes(image, [(120, 60, 40, 40)]) == [(50, 60, 40, 40)]


def test_whole_frame_when_no_regions_and_boxes_clamped_to_smaller_frames():
    regions = RegionSet()
    assert regions.boxes(np.zeros((10, 20, 3), np.uint8)) == [(0, 0, 20, 10)]
    regions.add((0, 0, 1279, 719))
    assert regions.boxes(np.zeros((100, 200, 3), np.uint8)) == [(0, 0, 200, 100)]
