"""Finding and decoding images: one place that knows which files count and how to read them.

Every photo the program reads (``classify``, image-folder sources, ``--empty-scene``, the
training and evaluation tools) goes through :func:`read_rgb`, so two guarantees hold
everywhere:

* **A pixel cap.** A small file can declare a huge image (a 100 KB PNG of 30000x30000 decodes
  to 2.7 GB; OpenCV's own limit is 2^30 pixels). The width and height are read from the file's
  header (PNG IHDR, JPEG SOF, BMP, WebP, TIFF) before anything is decoded, and an image over
  ``MAX_PIXELS`` (50 megapixels: every phone and most cameras are below it) is refused with a
  one-line ``ImageTooLargeError``. A file whose header this module cannot read is refused too,
  so OpenCV never sees a size that was not checked.
* **EXIF orientation.** Phones store photos sideways plus an Orientation tag; the decode
  applies it (all eight orientations), so a photo is classified the way it is shown.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
SKIPPED_DIRS = {".ipynb_checkpoints", "__pycache__"}
MAX_PIXELS = 50_000_000
"""The largest image (width x height) read_rgb decodes; larger ones are refused unread."""
DECODE_VERSION = 2
"""Bumped when read_rgb's pixels change (2: EXIF orientation applied), for caches of decoded
images to key on."""


class ImageReadError(Exception):
    """A file that is not a readable image; the message is one line."""


class ImageTooLargeError(ImageReadError):
    """An image whose header declares more than ``MAX_PIXELS`` pixels."""


def is_hidden(name: str) -> bool:
    return name.startswith(".")


def iter_image_files(root: Path) -> Iterator[Path]:
    """Image files under ``root`` in sorted order, skipping hidden files and checkpoint folders."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d) and d not in SKIPPED_DIRS)
        for name in sorted(filenames):
            if is_hidden(name):
                continue
            if Path(name).suffix.lower() in IMAGE_SUFFIXES:
                yield Path(dirpath) / name


def read_rgb(path: Path) -> np.ndarray:
    """Decode any common image file to an 8-bit RGB array (H, W, 3), upright.

    Handles grayscale, 16-bit and alpha images (alpha is dropped); applies the EXIF
    orientation; refuses images over ``MAX_PIXELS`` from their header, before decoding.
    Raises ``ImageReadError`` with a one-line reason for anything that is not a decodable
    image.
    """
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"cannot read file ({exc.strerror or exc})") from None
    if data.size == 0:
        raise ImageReadError("file is empty")
    check_pixel_count(data.tobytes())
    # IMREAD_COLOR (not IMREAD_UNCHANGED, which skips it) applies the EXIF orientation;
    # it also gives 8-bit BGR for every source (16-bit keeps the high byte, alpha is dropped).
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        raise ImageReadError("not a readable image (corrupt or unsupported format)")
    return to_rgb8(image)


def check_pixel_count(header: bytes) -> tuple[int, int]:
    """The (width, height) the file's header declares; ``ImageTooLargeError`` over the cap.

    Raises ``ImageReadError`` when the header is not one of the formats read here, since
    the size of anything else could not be checked.
    """
    size = image_size(header)
    if size is None:
        raise ImageReadError(
            "not a readable image (corrupt or unsupported format; use JPEG, PNG, BMP, WebP or TIFF)"
        )
    width, height = size
    if width <= 0 or height <= 0:
        raise ImageReadError(f"not a readable image (its header says {width}x{height} pixels)")
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"image is {width}x{height} ({_megapixels(width * height)} MP), over the "
            f"{MAX_PIXELS // 1_000_000} MP limit; resize it first"
        )
    return width, height


def _megapixels(pixels: int) -> str:
    """Whole megapixels, unless that would round down to the cap itself."""
    mp = pixels / 1e6
    return f"{mp:.0f}" if round(mp) * 1_000_000 > MAX_PIXELS else f"{mp:.2f}"


def image_size(header: bytes) -> tuple[int, int] | None:
    """(width, height) from an image file's bytes, or None if the format is not known.

    Chooses the format by its signature, as OpenCV does, so the size read is the size
    OpenCV would decode. Give the whole file: a JPEG's frame header follows its APPn
    segments (EXIF, ICC profiles, XMP), and a TIFF's first directory may lie at the end.
    """
    try:
        if header.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png_size(header)
        if header.startswith(b"\xff\xd8"):
            return _jpeg_size(header)
        if header.startswith(b"BM"):
            return _bmp_size(header)
        if header[:4] == b"RIFF" and header[8:12] == b"WEBP":
            return _webp_size(header)
        if header[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
            return _tiff_size(header)
    except (struct.error, IndexError, ValueError):
        return None
    return None


def _png_size(b: bytes) -> tuple[int, int] | None:
    if b[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", b[16:24])


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(b: bytes) -> tuple[int, int] | None:
    i = 2
    # Real files have a few dozen segments before the frame header; a file of nothing but
    # fill bytes or restart markers is refused after this many steps, not walked byte by byte.
    for _step in range(10_000):
        if i + 4 > len(b):
            return None
        if b[i] != 0xFF:  # stray bytes between segments: libjpeg skips to the next 0xFF
            i = b.find(b"\xff", i)
            if i < 0:
                return None
            continue
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            i += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, or scan data before any frame header
            return None
        (length,) = struct.unpack(">H", b[i + 2 : i + 4])
        if marker in _SOF_MARKERS:
            height, width = struct.unpack(">HH", b[i + 5 : i + 9])
            return width, height
        if length < 2:
            return None
        i += 2 + length
    return None


def _bmp_size(b: bytes) -> tuple[int, int] | None:
    (dib,) = struct.unpack("<I", b[14:18])
    if dib == 12:  # BITMAPCOREHEADER
        width, height = struct.unpack("<HH", b[18:22])
    else:
        width, height = struct.unpack("<ii", b[18:26])
    return abs(width), abs(height)


def _webp_size(b: bytes) -> tuple[int, int] | None:
    chunk = b[12:16]
    if chunk == b"VP8 ":
        if b[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", b[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        if b[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", b[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(b[24:27], "little") + 1
        height = int.from_bytes(b[27:30], "little") + 1
        return width, height
    return None


def _tiff_size(b: bytes) -> tuple[int, int] | None:
    """ImageWidth and ImageLength of the first IFD (the page OpenCV decodes)."""
    e = "<" if b[:2] == b"II" else ">"
    big = struct.unpack(e + "H", b[2:4])[0] == 43
    if big:
        (ifd,) = struct.unpack(e + "Q", b[8:16])
        (count,) = struct.unpack(e + "Q", b[ifd : ifd + 8])
        start, entry = ifd + 8, 20
    else:
        (ifd,) = struct.unpack(e + "I", b[4:8])
        (count,) = struct.unpack(e + "H", b[ifd : ifd + 2])
        start, entry = ifd + 2, 12
    fields = {}
    for k in range(min(count, 4096)):
        at = start + k * entry
        tag, kind = struct.unpack(e + "HH", b[at : at + 4])
        if tag in (256, 257):
            value_at = at + (12 if big else 8)
            if kind == 3:  # SHORT
                (fields[tag],) = struct.unpack(e + "H", b[value_at : value_at + 2])
            elif kind == 4:  # LONG
                (fields[tag],) = struct.unpack(e + "I", b[value_at : value_at + 4])
            elif kind == 16:  # LONG8 (BigTIFF)
                (fields[tag],) = struct.unpack(e + "Q", b[value_at : value_at + 8])
            else:
                return None
    if 256 not in fields or 257 not in fields:
        return None
    return fields[256], fields[257]


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """Normalise an OpenCV-decoded array (BGR, BGRA, gray, 16-bit) to 8-bit RGB."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    channels = image.shape[2]
    if channels == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if channels == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def resize_for_model(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to the model's (h, w) as float32 RGB in [0, 255]; area filter when shrinking."""
    h, w = size
    # Halving with the area filter takes OpenCV's fast integer-scale path; the remaining
    # non-integer step then works on a quarter of the pixels: a 720p frame costs ~1 ms instead
    # of ~2 ms, and the result differs from a direct area resize by ~0.05 grey levels.
    while rgb.shape[0] >= 2 * h and rgb.shape[1] >= 2 * w:
        even = rgb[: rgb.shape[0] & ~1, : rgb.shape[1] & ~1]
        rgb = cv2.resize(
            even, (even.shape[1] // 2, even.shape[0] // 2), interpolation=cv2.INTER_AREA
        )
    interp = cv2.INTER_AREA if rgb.shape[0] > h or rgb.shape[1] > w else cv2.INTER_LINEAR
    return cv2.resize(rgb, (w, h), interpolation=interp).astype(np.float32)
