"""Field augmentation on real sample photos: each transform changes the photo the way its
name says (darker, blurrier, tinted, noisier, compressed, smaller, on another surface),
shapes and dtypes hold, and a seed fixes the result."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from waste_vision.images import read_rgb
from waste_vision.training.augment import (
    Surface,
    board_mask,
    composite,
    defocus_blur,
    field_view,
    jpeg,
    low_light,
    motion_blur,
    perspective,
    sensor_noise,
    surface,
    white_balance,
)

SAMPLES = Path(__file__).resolve().parents[1] / "assets" / "samples"


@pytest.fixture(scope="module")
def bottle() -> np.ndarray:
    """A TrashNet photo: a bottle on the white board."""
    return read_rgb(SAMPLES / "plastic_trashnet_plastic1.jpg")


@pytest.fixture(scope="module")
def garbage12() -> np.ndarray:
    """A garbage12 photo: no board around the item."""
    return read_rgb(SAMPLES / "plastic_garbage12_plastic162.jpg")


def sharpness(rgb: np.ndarray) -> float:
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_field_view_shape_dtype_range(bottle, garbage12):
    rng = np.random.default_rng(0)
    for photo in (bottle, garbage12):
        for _ in range(5):
            x = field_view(photo, rng, (224, 224))
            assert x.shape == (224, 224, 3) and x.dtype == np.float32
            assert x.min() >= 0 and x.max() <= 255


def test_field_view_is_fixed_by_its_seed(bottle):
    a = field_view(bottle, np.random.default_rng(5), (224, 224))
    b = field_view(bottle, np.random.default_rng(5), (224, 224))
    c = field_view(bottle, np.random.default_rng(6), (224, 224))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_field_views_vary(bottle):
    rng = np.random.default_rng(1)
    views = np.stack([field_view(bottle, rng, (96, 96)) for _ in range(8)])
    # not one view repeated: views differ clearly from each other
    assert views.std(0).mean() > 10


def test_blurs_lower_sharpness(bottle):
    before = sharpness(bottle)
    assert sharpness(motion_blur(bottle, 11, 30)) < 0.5 * before
    assert sharpness(defocus_blur(bottle, 3)) < 0.5 * before
    assert motion_blur(bottle, 11, 30).shape == bottle.shape


def test_low_light_darkens(bottle):
    dark = low_light(bottle, 0.4, 1.5)
    assert dark.dtype == np.uint8 and dark.shape == bottle.shape
    # (x / 255) ** 1.5 <= x / 255: every pixel at most 0.4 of what it was, white at most 102
    assert (dark <= 0.4 * bottle.astype(np.float32)).all()
    assert dark.max() <= int(0.4 * 255) and dark.mean() <= 0.4 * bottle.mean()


def test_white_balance_tints(bottle):
    warm = white_balance(bottle, (1.2, 1.0, 0.8))
    ratio_before = bottle[..., 0].mean() / bottle[..., 2].mean()
    assert warm[..., 0].mean() / warm[..., 2].mean() > 1.2 * ratio_before
    assert np.array_equal(warm[..., 1], bottle[..., 1])  # a gain of 1: green untouched
    assert (warm[..., 0] >= bottle[..., 0]).all() and (warm[..., 2] <= bottle[..., 2]).all()


def test_sensor_noise_adds_fine_variation(bottle):
    flat = np.full((64, 64, 3), 120, np.uint8)
    noisy = sensor_noise(flat, np.random.default_rng(0), 8)
    # shot noise sigma * sqrt(120 + 1) / 8 = 11, read noise sigma / 2 = 4, no clipping
    assert noisy.std() == pytest.approx(np.hypot(11, 4), rel=0.03)
    assert noisy.mean() == pytest.approx(119.5, abs=0.5)  # uint8 truncation: half a level down
    assert sharpness(sensor_noise(bottle, np.random.default_rng(0), 8)) > sharpness(bottle)


def test_jpeg_changes_pixels_keeps_shape(bottle):
    low = jpeg(bottle, 15)
    assert low.shape == bottle.shape and low.dtype == np.uint8
    assert np.abs(low.astype(int) - bottle).mean() > 1
    # heavy compression loses fine detail
    assert sharpness(low) < sharpness(bottle)


def test_perspective_keeps_shape_moves_pixels(bottle):
    tilted = perspective(bottle, np.random.default_rng(0), 0.15)
    assert tilted.shape == bottle.shape
    assert np.abs(tilted.astype(int) - bottle).mean() > 5


def test_board_mask_finds_the_can_not_the_board(bottle):
    mask = board_mask(bottle)
    assert mask is not None and mask.shape == bottle.shape[:2]
    area = (mask > 0).mean()
    assert 0.03 < area < 0.6
    # the board's corners are not the item
    assert mask[:10, :10].max() == 0 and mask[-10:, -10:].max() == 0


def test_board_mask_none_without_a_board(garbage12):
    dark = low_light(garbage12, 0.3, 1.0)  # a dark background is no light board
    assert board_mask(dark) is None


def test_surfaces_look_like_their_names():
    rng = np.random.default_rng(0)
    belt = surface(Surface.BELT, rng, 64, 64)
    cardboard = surface(Surface.CARDBOARD, rng, 64, 64)
    concrete = surface(Surface.CONCRETE, rng, 64, 64)
    assert belt.dtype == np.uint8 and belt.shape == (64, 64, 3)
    assert belt.mean() < 90  # a dark belt
    assert cardboard[..., 0].mean() > cardboard[..., 2].mean() + 40  # brown: red over blue
    # concrete is grey: channels close together
    assert np.abs(concrete.mean((0, 1)) - concrete.mean()).max() < 10


def test_composite_lays_a_smaller_item_on_the_surface(bottle):
    rng = np.random.default_rng(3)
    mask = board_mask(bottle)
    belt = surface(Surface.BELT, rng, 300, 300)
    out = composite(bottle, mask, belt, rng, (0.4, 0.4), edge_cut=0.0)
    assert out.shape == belt.shape
    # most of the frame is still the dark belt (the white board did not come along) ...
    assert np.median(out) < 90
    # ... and the item is there: a part of the frame (not all of it) differs from the belt
    changed = (np.abs(out.astype(int) - belt).max(-1) > 40).mean()
    assert 0.02 < changed < 0.4
