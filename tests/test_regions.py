"""Region parsing, clamping to any frame size, and tracking a moving patch."""

from __future__ import annotations

import numpy as np
import pytest

from waste_vision.errors import UserError
from waste_vision.regions import RegionSet, clamp_box, parse_box


def test_parse_box():
    assert parse_box("10,20,30,40") == (10, 20, 30, 40)
    for bad in ("10,20,30", "a,b,c,d", "0,0,0,5"):
        with pytest.raises(UserError, match="region"):
            parse_box(bad)


@pytest.mark.parametrize("box, size, expected", [
    ((0, 0, 100, 100), (640, 480), (0, 0, 100, 100)),
    ((600, 400, 200, 200), (640, 480), (600, 400, 40, 80)),
    ((-50, -50, 100, 100), (640, 480), (0, 0, 50, 50)),
    ((0, 0, 1280, 720), (320, 240), (0, 0, 320, 240)),
    ((1000, 1000, 50, 50), (640, 480), None),
    ((0, 0, 5000, 5000), (3, 2), (0, 0, 3, 2)),
])
def test_clamp_box(box, size, expected):
    assert clamp_box(box, *size) == expected


def _scene(x, y, size=(240, 320)):
    rng = np.random.default_rng(0)
    image = np.full((*size, 3), 40, np.uint8)
    image[y:y + 40, x:x + 40] = rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)
    return image


def test_tracker_follows_a_moving_patch():
    regions = RegionSet()
    regions.add((50, 60, 40, 40))
    x = 50
    for step in range(12):
        x = 50 + 4 * step
        (box,) = regions.boxes(_scene(x, 60))
    assert abs(box[0] - x) <= 8, box
    assert abs(box[1] - 60) <= 8, box


def test_whole_frame_when_no_regions_and_boxes_clamped_to_smaller_frames():
    regions = RegionSet(track=False)
    assert regions.boxes(np.zeros((10, 20, 3), np.uint8)) == [(0, 0, 20, 10)]
    regions.add((0, 0, 1279, 719))
    assert regions.boxes(np.zeros((100, 200, 3), np.uint8)) == [(0, 0, 200, 100)]
