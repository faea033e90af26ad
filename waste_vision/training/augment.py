"""Field augmentation: make clean web and board photos look like cameras in use.

The training photos are mostly sharp, well lit, centred items on plain boards; the field is
motion blur, dim light, tinted light, compressed video, an item small in the frame or cut by
its edge, lying on a dark belt, cardboard, wood or concrete. Each transform here does one of
those things, takes an explicit ``numpy`` generator (so a seed fixes the result) and works on
RGB arrays; ``field_view`` chains them at random into one training view.

TrashNet items lie on a plain white board, so they can be cut out by thresholding the board
(``board_mask``) and laid on another surface (``composite``); photos without such a board
are laid on the surface whole, as a smaller picture, which still teaches scale and edges.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any, cast

import cv2
import numpy as np

from waste_vision.images import resize_for_model

WORK_SIDE = 320  # geometry and compositing run at this long side: fast, and finer than 224


class Surface(Enum):
    """Procedural surfaces an item can lie on (plus crops of real belt frames, if given)."""

    BELT = "belt"
    CARDBOARD = "cardboard"
    WOOD = "wood"
    CONCRETE = "concrete"


def _smooth_noise(rng: np.random.Generator, h: int, w: int, scale: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1]: random values on a coarse grid, resized up."""
    gh, gw = max(2, h // scale), max(2, w // scale)
    coarse = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC).clip(-1, 1)


def surface(kind: Surface, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A (h, w, 3) uint8 texture of ``kind``, randomly tinted and lit."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind is Surface.BELT:
        base = rng.uniform(25, 70)
        streaks = rng.normal(0, 1, (1, w)).astype(np.float32)
        streaks = cv2.GaussianBlur(streaks, (0, 0), 1.5) * rng.uniform(3, 8)
        grey = base + streaks + 6 * _smooth_noise(rng, h, w, 40) + rng.normal(0, 3, (h, w))
        rgb = np.stack([grey, grey, grey * rng.uniform(1.0, 1.1)], -1)
    elif kind is Surface.CARDBOARD:
        colour = np.array([rng.uniform(150, 200), rng.uniform(110, 150), rng.uniform(70, 100)])
        period = rng.uniform(6, 14)
        ridges = 6 * np.sin(2 * np.pi * yy / period)
        fibres = 10 * _smooth_noise(rng, h, w, 8) + rng.normal(0, 4, (h, w))
        rgb = (
            colour[None, None, :] + (ridges + fibres + 12 * _smooth_noise(rng, h, w, 60))[..., None]
        )
    elif kind is Surface.WOOD:
        colour = np.array([rng.uniform(120, 190), rng.uniform(80, 130), rng.uniform(40, 80)])
        warp = 25 * _smooth_noise(rng, h, w, 50)
        rings = np.sin(2 * np.pi * (yy + warp) / rng.uniform(10, 25))
        grain = rng.normal(0, 1, (h, 1)).astype(np.float32) * 6 + rng.normal(0, 3, (h, w))
        rgb = colour[None, None, :] + (18 * rings + grain)[..., None]
    else:  # concrete
        grey = rng.uniform(90, 170)
        speckle = rng.normal(0, 9, (h, w))
        rgb = (
            grey
            + (15 * _smooth_noise(rng, h, w, 30) + 8 * _smooth_noise(rng, h, w, 6) + speckle)[
                ..., None
            ]
            + rng.uniform(-6, 6, 3)[None, None, :]
        )
    # uneven light across the surface
    ramp = rng.uniform(-25, 25) * (xx / w - 0.5) + rng.uniform(-25, 25) * (yy / h - 0.5)
    return np.clip(rgb + ramp[..., None], 0, 255).astype(np.uint8)


def board_mask(rgb: np.ndarray) -> np.ndarray | None:
    """The item's mask (uint8 0/255) when it lies on a plain light board, else None.

    Worked out at 160 px on the long side (fast), returned at the photo's size.
    """
    h, w = rgb.shape[:2]
    s = 160 / max(h, w)
    if s >= 1:
        return _board_mask(rgb)
    small = cv2.resize(rgb, (max(int(w * s), 8), max(int(h * s), 8)), interpolation=cv2.INTER_AREA)
    mask = _board_mask(small)
    if mask is None:
        return None
    return (cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR) > 127).astype(np.uint8) * 255


def _board_mask(rgb: np.ndarray) -> np.ndarray | None:
    """The item's mask (uint8 0/255) when it lies on a plain light board, else None.

    The board is estimated from the image border: when the border is bright and of low
    saturation, pixels that differ clearly from it (in brightness or colour) are the item.
    """
    h, w = rgb.shape[:2]
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    border = np.concatenate(
        [
            lab[:6].reshape(-1, 3),
            lab[-6:].reshape(-1, 3),
            lab[:, :6].reshape(-1, 3),
            lab[:, -6:].reshape(-1, 3),
        ]
    )
    ref = np.median(border, 0)
    spread = np.abs(border - ref).mean(0)
    if ref[0] < 130 or np.abs(ref[1:] - 128).max() > 25 or spread[0] > 45 or spread[1:].max() > 10:
        return None
    # the board's light falls off towards the edges: the local light is the brightest board
    # nearby (a grey closing ignores items darker than the board), then smoothed
    k = max(h, w) // 8 | 1
    light = cv2.dilate(lab[..., 0], np.ones((k, k), np.uint8))
    light = cv2.GaussianBlur(light, (0, 0), k / 2)
    # soft shadows darken the board a little and keep its colour: not the item
    # and are smooth: darker pixels count only where the picture has texture (edges, print)
    l_ = lab[..., 0]
    texture = np.sqrt(np.maximum(cv2.blur(l_ * l_, (7, 7)) - cv2.blur(l_, (7, 7)) ** 2, 0))
    diff = (
        np.maximum(light - l_ - 26, 0) * (texture > 5)
        + np.maximum(np.abs(lab[..., 1:] - ref[1:]).sum(-1) - 8, 0) * 1.5
        + np.maximum(lab[..., 0] - light - 12, 0)
    )
    mask = (diff > 10).astype(np.uint8) * 255
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
    )
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= 0.004 * h * w]
    if not big:
        return None
    # pieces joined (a clear bottle shows only its rims and label) and holes filled (its
    # inside looks like the board)
    mask = np.where(np.isin(labels, big), 255, 0).astype(np.uint8)
    mask = cv2.morphologyEx(
        mask, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (9, 9))
    )
    filled = mask.copy()
    flood = np.zeros((h + 2, w + 2), np.uint8)
    cv2.floodFill(filled, flood, (0, 0), 255)
    mask = np.bitwise_or(mask, cv2.bitwise_not(filled))
    # a ragged mask (a clear item's rims in pieces) would cut the item apart: not used
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    hull_area = sum(cv2.contourArea(cv2.convexHull(c)) for c in contours)
    if len(contours) != 1 or (mask > 0).sum() < 0.8 * hull_area:
        return None
    area = mask.mean() / 255
    return mask if 0.03 < area < 0.9 else None


def composite(
    item: np.ndarray,
    mask: np.ndarray | None,
    background: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.35, 0.9),
    edge_cut: float = 0.25,
) -> np.ndarray:
    """``item`` (cut out by ``mask``, or whole when None) scaled, rotated and laid on
    ``background``; with probability ``edge_cut`` it is shifted so the frame cuts it."""
    bh, bw = background.shape[:2]
    if mask is not None:
        ys, xs = np.nonzero(mask)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        item, mask = item[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    ih, iw = item.shape[:2]
    s = rng.uniform(*scale) * min(bh / ih, bw / iw)
    angle = rng.uniform(-180, 180) if mask is not None else rng.uniform(-15, 15)
    m = cv2.getRotationMatrix2D((iw / 2, ih / 2), angle, s)
    # place the item's centre: anywhere inside, or near an edge to cut it
    if rng.random() < edge_cut:
        cx = rng.choice([rng.uniform(0, 0.15), rng.uniform(0.85, 1.0)]) * bw
        cy = rng.uniform(0.2, 0.8) * bh
        if rng.random() < 0.5:
            cx, cy = rng.uniform(0.2, 0.8) * bw, rng.choice([0.05, 0.95]) * bh
    else:
        cx, cy = rng.uniform(0.35, 0.65) * bw, rng.uniform(0.35, 0.65) * bh
    m[:, 2] += (cx - iw / 2, cy - ih / 2)
    warped = cv2.warpAffine(item, m, (bw, bh), flags=cv2.INTER_LINEAR)
    alpha_src = mask if mask is not None else np.full((ih, iw), 255, np.uint8)
    alpha = cv2.warpAffine(alpha_src, m, (bw, bh), flags=cv2.INTER_LINEAR)
    alpha = cv2.GaussianBlur(alpha, (3, 3), 0).astype(np.float32)[..., None] / 255
    # a soft shadow under the item
    shadow = cv2.GaussianBlur(alpha[..., 0], (0, 0), 6)
    shadow = np.roll(shadow, (4, 4), (0, 1))[..., None] * rng.uniform(0.2, 0.5)
    out = background.astype(np.float32) * (1 - shadow)
    out = out * (1 - alpha) + warped.astype(np.float32) * alpha
    return np.clip(out, 0, 255).astype(np.uint8)


def perspective(rgb: np.ndarray, rng: np.random.Generator, strength: float = 0.12) -> np.ndarray:
    """A random tilt of the camera: the four corners moved inwards by up to ``strength``."""
    h, w = rgb.shape[:2]
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    jitter = rng.uniform(0, strength, (4, 2)) * np.array([w, h], np.float32)
    dst = src + jitter * np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    m = cv2.getPerspectiveTransform(src, dst.astype(np.float32))
    return cv2.warpPerspective(rgb, m, (w, h), borderMode=cv2.BORDER_REFLECT_101)


def motion_blur(rgb: np.ndarray, length: int, angle: float) -> np.ndarray:
    """A straight streak of ``length`` pixels at ``angle`` degrees (a moving belt or hand)."""
    length = max(int(length), 1)
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1
    m = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1)
    # float32 in, float32 out (cv2's stub types any result as integer-or-float)
    kernel = cast(
        "np.ndarray[Any, np.dtype[np.float32]]", cv2.warpAffine(kernel, m, (length, length))
    )
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(rgb, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def defocus_blur(rgb: np.ndarray, radius: float) -> np.ndarray:
    """A disc blur of ``radius`` pixels (an item closer than the lens focuses)."""
    r = max(int(round(radius)), 1)
    kernel = np.zeros((2 * r + 1, 2 * r + 1), np.float32)
    cv2.circle(kernel, (r, r), r, 1.0, -1)
    kernel /= kernel.sum()
    return cv2.filter2D(rgb, -1, kernel, borderType=cv2.BORDER_REFLECT_101)


def low_light(rgb: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """Less light (``gain`` < 1) and a darker tone curve (``gamma`` > 1)."""
    x = (rgb.astype(np.float32) / 255) ** gamma * gain
    return np.clip(x * 255, 0, 255).astype(np.uint8)


def sensor_noise(rgb: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Shot-like noise (stronger in light parts) plus read noise, some of it coloured."""
    x = rgb.astype(np.float32)
    shot = rng.normal(0, 1, x.shape[:2] + (1,)) * np.sqrt(x + 1) * sigma / 8
    read = rng.normal(0, sigma / 2, x.shape)
    return np.clip(x + shot + read, 0, 255).astype(np.uint8)


def white_balance(rgb: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Per-channel gains (R, G, B): warm bulbs, cold LEDs, green-tinted tubes."""
    x = rgb.astype(np.float32) * np.array(gains, np.float32)[None, None, :]
    return np.clip(x, 0, 255).astype(np.uint8)


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """Re-encoded as JPEG at ``quality`` (blocking and ringing, as in compressed video)."""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert decoded is not None  # a JPEG encoded just above always decodes
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)


def work_size(rgb: np.ndarray) -> np.ndarray:
    """The photo shrunk to ``WORK_SIDE`` on its long side (never enlarged)."""
    h, w = rgb.shape[:2]
    s = WORK_SIDE / max(h, w)
    if s < 1:
        rgb = cv2.resize(rgb, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def surface_bank(
    rng: np.random.Generator, per_kind: int = 24, side: int = WORK_SIDE
) -> list[np.ndarray]:
    """Procedural surfaces made once (each costs milliseconds), reused flipped and turned."""
    return [surface(kind, rng, side, side) for kind in Surface for _ in range(per_kind)]


def random_background(
    rng: np.random.Generator,
    h: int,
    w: int,
    belt_crops: Sequence[np.ndarray] = (),
    bank: Sequence[np.ndarray] = (),
) -> np.ndarray:
    """A surface: a real belt crop (when given), one from ``bank`` turned and re-lit, or a
    new procedural one."""
    if len(belt_crops) and rng.random() < 0.35:
        crop = belt_crops[int(rng.integers(len(belt_crops)))]
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    if len(bank):
        tex = np.rot90(bank[int(rng.integers(len(bank)))], int(rng.integers(4)))
        tex = cv2.resize(np.ascontiguousarray(tex), (w, h), interpolation=cv2.INTER_LINEAR)
        return np.clip(tex * rng.uniform(0.8, 1.2), 0, 255).astype(np.uint8)
    kind = list(Surface)[int(rng.integers(len(Surface)))]
    return surface(kind, rng, h, w)


_NO_MASK = object()


def field_view(
    rgb: np.ndarray,
    rng: np.random.Generator,
    size: tuple[int, int],
    belt_crops: Sequence[np.ndarray] = (),
    place: float = 0.6,
    bank: Sequence[np.ndarray] = (),
    mask=_NO_MASK,
) -> np.ndarray:
    """One random field-style training view, float32 RGB in [0, 255] at ``size``.

    With probability ``place`` the item is laid on a surface (cut out when it lies on a
    plain board, else whole and smaller); otherwise the photo is flipped, tilted and
    cropped. ``mask``: ``board_mask`` of the photo at work size, when already known (it
    is the same for every view). Then, each at its own chance: motion or defocus blur, low light, white
    balance, sensor noise, JPEG.
    """
    rgb = work_size(rgb)
    flip = rng.random() < 0.5
    if flip:
        rgb = np.ascontiguousarray(rgb[:, ::-1])
    h, w = rgb.shape[:2]
    if rng.random() < place:
        if mask is _NO_MASK:
            mask = board_mask(rgb)
        elif mask is not None and flip:
            mask = np.ascontiguousarray(mask[:, ::-1])
        side = max(h, w)
        background = random_background(rng, side, side, belt_crops, bank)
        scale = (0.45, 0.95) if mask is not None else (0.55, 0.9)
        rgb = composite(rgb, mask, background, rng, scale)
    else:
        rgb = perspective(rgb, rng, rng.uniform(0.0, 0.15))
        # zoom in: a crop of 70-100% of each side, possibly off-centre (item cut by edges)
        ch, cw = int(h * rng.uniform(0.7, 1.0)), int(w * rng.uniform(0.7, 1.0))
        y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        rgb = rgb[y0 : y0 + ch, x0 : x0 + cw]
    x = np.clip(resize_for_model(rgb, size), 0, 255).astype(np.uint8)
    if rng.random() < 0.45:
        if rng.random() < 0.6:
            x = motion_blur(x, int(rng.integers(3, 16)), rng.uniform(0, 180))
        else:
            x = defocus_blur(x, rng.uniform(1, 4))
    if rng.random() < 0.4:
        x = low_light(x, rng.uniform(0.3, 0.8), rng.uniform(1.0, 1.8))
    if rng.random() < 0.4:
        x = white_balance(x, tuple(rng.uniform(0.75, 1.25, 3)))
    if rng.random() < 0.4:
        x = sensor_noise(x, rng, rng.uniform(2, 10))
    if rng.random() < 0.4:
        x = jpeg(x, int(rng.integers(20, 70)))
    return x.astype(np.float32)


def belt_crops(
    frames: list[Path],
    boxes: list[np.ndarray],
    rng: np.random.Generator,
    per_frame: int = 2,
    side: int = 120,
) -> list[np.ndarray]:
    """Squares of empty belt from labelled conveyor frames: regions no item box touches."""
    from waste_vision.images import read_rgb

    out = []
    for path, frame_boxes in zip(frames, boxes, strict=False):
        rgb = read_rgb(path)
        h, w = rgb.shape[:2]
        taken = np.zeros((h, w), bool)
        for cx, cy, bw, bh in frame_boxes:
            x0, x1 = int((cx - bw / 2) * w) - 8, int((cx + bw / 2) * w) + 8
            y0, y1 = int((cy - bh / 2) * h) - 8, int((cy + bh / 2) * h) + 8
            taken[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = True
        got = 0
        for _ in range(30):
            y, x = int(rng.integers(0, h - side)), int(rng.integers(0, w - side))
            if not taken[y : y + side, x : x + side].any():
                out.append(rgb[y : y + side, x : x + side].copy())
                got += 1
                if got == per_frame:
                    break
    return out
