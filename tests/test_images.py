"""read_rgb: the pixel cap is checked from the header before any decode, and EXIF orientation
is applied (all eight), so phone photos are classified upright."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np
import pytest

from tests.conftest import ROOT
from waste_vision import images
from waste_vision.images import (
    MAX_PIXELS,
    ImageReadError,
    ImageTooLargeError,
    check_pixel_count,
    image_size,
    read_rgb,
)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def bilevel_png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG: 30000x30000 compresses to ~110 KB, decodes to 2.7 GB BGR."""
    z = zlib.compressobj(9)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def test_the_png_builder_makes_real_images(tmp_path):
    """The same builder at a small size gives a PNG OpenCV decodes: the big one is real too."""
    path = tmp_path / "small.png"
    path.write_bytes(bilevel_png(300, 200))
    rgb = read_rgb(path)
    assert rgb.shape == (200, 300, 3) and rgb.max() == 0


def test_huge_png_is_refused_from_its_header_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    path.write_bytes(bilevel_png(30000, 30000))
    assert path.stat().st_size < 200_000  # ~110 KB on disk, 900 megapixels

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded an image over the pixel cap")

    monkeypatch.setattr(images.cv2, "imdecode", no_decode)
    monkeypatch.setattr(images.cv2, "imread", no_decode)
    with pytest.raises(ImageTooLargeError) as err:
        read_rgb(path)
    assert str(err.value) == (
        "image is 30000x30000 (900 MP), over the 50 MP limit; resize it first"
    )
    assert isinstance(err.value, ImageReadError)  # every caller's per-file handling applies


def test_cap_is_50_megapixels():
    assert MAX_PIXELS == 50_000_000
    png = b"\x89PNG\r\n\x1a\n" + _chunk(
        b"IHDR", struct.pack(">IIBBBBB", 10000, 5000, 8, 2, 0, 0, 0)
    )
    assert check_pixel_count(png) == (10000, 5000)  # exactly 50 MP: allowed
    over = png.replace(struct.pack(">II", 10000, 5000), struct.pack(">II", 10001, 5000))
    with pytest.raises(ImageTooLargeError, match=r"10001x5000 \(50.01 MP\)"):
        check_pixel_count(over)


def _bgr(h=48, w=64):
    rng = np.random.default_rng(0)
    return cv2.resize(
        rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8),
        (w, h),
        interpolation=cv2.INTER_NEAREST,
    )


@pytest.mark.parametrize(
    "ext, params, bgra",
    [
        (".png", [], False),
        (".png", [], True),
        (".jpg", [], False),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], False),
        (".bmp", [], False),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80], False),  # VP8
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], False),  # VP8L
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80], True),  # VP8X (alpha)
        (".tif", [], False),
    ],
)
def test_header_size_is_the_decoded_size(ext, params, bgra):
    """For every format read here the header's size is what OpenCV decodes."""
    image = _bgr(45, 67)
    if bgra:
        image = np.dstack([image, np.full(image.shape[:2], 200, np.uint8)])
    ok, data = cv2.imencode(ext, image, params)
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    assert image_size(data.tobytes()) == (decoded.shape[1], decoded.shape[0]) == (67, 45)


def test_big_endian_tiff_and_stray_jpeg_bytes():
    tiff = (
        b"MM\x00*"
        + struct.pack(">I", 8)
        + struct.pack(">H", 2)
        + struct.pack(">HHIHH", 256, 3, 1, 7000, 0)
        + struct.pack(">HHII", 257, 4, 1, 9000)
        + b"\x00" * 4
    )
    with pytest.raises(ImageTooLargeError, match="7000x9000 .63 MP."):
        check_pixel_count(tiff)
    _, data = cv2.imencode(".jpg", _bgr())
    raw = data.tobytes()
    # garbage between two segments: libjpeg skips it to the next marker, so does the header read
    assert image_size(raw[:2] + b"\x00\x13" + raw[2:]) == (64, 48)


@pytest.mark.parametrize(
    "data",
    [
        b"P6\n30000 30000\n255\n",  # a PPM: OpenCV reads it, but its size is not checked here
        b"\xff\xd8\xff\xda\x00\x02",  # a JPEG with scan data before any frame header
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDX",
        b"RIFF\x00\x00\x00\x00WEBPVP8Z",
    ],
)
def test_unknown_or_broken_headers_are_refused_unread(tmp_path, monkeypatch, data):
    path = tmp_path / "odd.img"
    path.write_bytes(data + bytes(64))
    monkeypatch.setattr(images.cv2, "imdecode", lambda *a: pytest.fail("decoded"))
    with pytest.raises(ImageReadError) as err:
        read_rgb(path)
    assert str(err.value) == (  # no format check_pixel_count knows: refused from the header
        "not a readable image (corrupt or unsupported format; use JPEG, PNG, BMP, WebP or TIFF)"
    )


def exif_jpeg(bgr: np.ndarray, orientation: int) -> bytes:
    """A JPEG with a minimal EXIF APP1 segment: one big-endian IFD holding Orientation (0x0112)."""
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    ifd = struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + bytes(4)
    payload = b"Exif\x00\x00" + b"MM\x00*" + struct.pack(">I", 8) + ifd
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    raw = data.tobytes()
    return raw[:2] + app1 + raw[2:]


# EXIF 2.3, Orientation: how the stored rows must be turned to show the picture upright.
UPRIGHT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],  # mirrored left-right
    3: lambda a: a[::-1, ::-1],  # rotated 180
    4: lambda a: a[::-1],  # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),  # transposed
    6: lambda a: np.rot90(a, -1),  # stored on its side: turn 90 clockwise (phones, portrait)
    7: lambda a: np.rot90(a, 2).transpose(1, 0, 2),  # transversed
    8: lambda a: np.rot90(a, 1),  # turn 90 counter-clockwise
}


@pytest.mark.parametrize("orientation", sorted(UPRIGHT))
def test_exif_orientation_is_applied(tmp_path, orientation):
    stored = _bgr(48, 64)  # landscape as stored, 8x8 blocks of random colours
    path = tmp_path / f"exif_{orientation}.jpg"
    path.write_bytes(exif_jpeg(stored, orientation))
    as_stored = cv2.cvtColor(
        cv2.imdecode(
            np.fromfile(str(path), np.uint8), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
        ),
        cv2.COLOR_BGR2RGB,
    )
    rgb = read_rgb(path)
    expected = UPRIGHT[orientation](as_stored)
    assert rgb.shape == expected.shape
    assert rgb.shape[:2] == ((64, 48) if orientation >= 5 else (48, 64))
    np.testing.assert_array_equal(rgb, expected)


def test_phone_photo_is_classified_upright(tmp_path):
    """A real photo stored on its side with Orientation=6 reads as the upright photo."""
    upright = cv2.imread(str(ROOT / "assets" / "samples" / "glass_trashnet_glass102.jpg"))
    sideways = np.ascontiguousarray(np.rot90(upright, 1))  # what the sensor stored
    path = tmp_path / "phone.jpg"
    path.write_bytes(exif_jpeg(sideways, 6))
    rgb = read_rgb(path)
    assert rgb.shape == upright.shape
    diff = np.abs(rgb.astype(int) - cv2.cvtColor(upright, cv2.COLOR_BGR2RGB)).mean()
    assert diff < 3  # JPEG re-encoding only; sideways it would be ~50


def test_every_photo_the_program_reads_goes_through_read_rgb():
    """No module decodes an image file by itself (and so skips the cap and the orientation).

    augment.jpeg decodes bytes it has just encoded in memory: not a file, allowed.
    """
    allowed = {("images.py", "imdecode"), ("augment.py", "imdecode")}
    found = set()
    for source in (ROOT / "waste_vision").rglob("*.py"):
        text = source.read_text(encoding="utf-8")
        for call in ("imread", "imdecode", "imreadmulti", "imreadWithMetadata"):
            if f"cv2.{call}(" in text:
                found.add((source.name, call))
    assert found <= allowed, found - allowed


def test_image_folder_source_shows_phone_photos_upright_and_skips_bombs(tmp_path):
    from waste_vision.engine.sources import ImageFolderSource, open_source

    folder = tmp_path / "photos"
    folder.mkdir()
    stored = _bgr(48, 64)
    (folder / "a_phone.jpg").write_bytes(exif_jpeg(stored, 6))
    (folder / "b_bomb.png").write_bytes(bilevel_png(30000, 30000))
    events = []
    source = open_source(folder, on_status=events.append)
    assert isinstance(source, ImageFolderSource)
    frames = []
    with source:
        while not source.finished:
            frame = source.read(2.0)
            if frame is not None:
                frames.append(frame.image)
    assert [f.shape for f in frames] == [(64, 48, 3)]  # upright: portrait
    np.testing.assert_array_equal(frames[0], read_rgb(folder / "a_phone.jpg"))
    assert [p.name for p in source.skipped] == ["b_bomb.png"]
    skipped = f"{folder / 'b_bomb.png'}: skipped, image is 30000x30000 (900 MP), over the 50 MP"
    assert [e.message for e in events if "b_bomb.png" in e.message] == [
        skipped + " limit; resize it first"
    ]


def test_a_tiff_directory_at_the_end_of_a_big_file_is_found():
    """OpenCV (like many writers) puts the TIFF directory after the pixel data."""
    image = np.random.default_rng(0).integers(0, 255, (1200, 1600, 3), dtype=np.uint8)
    _, data = cv2.imencode(".tif", image, [cv2.IMWRITE_TIFF_COMPRESSION, 1])
    assert struct.unpack("<I", data.tobytes()[4:8])[0] > 5_000_000
    assert image_size(data.tobytes()) == (1600, 1200)


def test_a_jpeg_of_only_fill_bytes_or_restart_markers_is_refused():
    assert image_size(b"\xff\xd8" + b"\xff" * 3_000_000) is None
    assert image_size(b"\xff\xd8" + b"\xff\xd0" * 1_000_000) is None
