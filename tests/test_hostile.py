"""Hostile input: every refusal is one line naming the file, and the good inputs still go through.

Also a fuzz pass (hypothesis) over image decoding and the manifest loader: no input may
escape as anything but the documented error types.
"""

from __future__ import annotations

import json
import os
import shutil

import cv2
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT, litert_models_copy
from tests.test_images import bilevel_png
from waste_vision.commands.cli import main
from waste_vision.errors import UserError
from waste_vision.images import ImageReadError, read_rgb
from waste_vision.model.manifest import load_manifest

SAMPLES = ROOT / "assets" / "samples"


def _hostile_folder(root):
    root.mkdir()
    # a photo far from any decision boundary, so that re-encoding it (RGBA, 6000 px) cannot
    # flip its label: what is tested is the handling of the files, not the model
    good = SAMPLES / "paper_trashnet_paper104.jpg"
    shutil.copy(good, root / "good.jpg")
    (root / "empty.jpg").write_bytes(b"")
    data = good.read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (root / "text.jpg").write_text("this is not an image\n")
    cv2.imwrite(str(root / "one_pixel.png"), np.full((1, 1, 3), 127, np.uint8))
    rgba = np.dstack(
        [cv2.imread(str(good)), np.full(cv2.imread(str(good)).shape[:2], 90, np.uint8)]
    )
    cv2.imwrite(str(root / "rgba.png"), rgba)
    grey16 = cv2.cvtColor(cv2.imread(str(good)), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257
    cv2.imwrite(str(root / "grey16.png"), grey16)
    big = cv2.resize(cv2.imread(str(good)), (6000, 4500), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(root / "huge.jpg"), big)
    # 110 KB on disk, 900 megapixels: refused from its header, never decoded
    (root / "bomb.png").write_bytes(bilevel_png(30000, 30000))
    (root / ".hidden.jpg").write_bytes(b"junk")
    (root / ".ipynb_checkpoints").mkdir()
    (root / ".ipynb_checkpoints" / "x.jpg").write_bytes(b"junk")
    return root


def test_classify_hostile_folder(tmp_path, capsys):
    folder = _hostile_folder(tmp_path / "in")
    code = main(["classify", "--format", "jsonl", str(folder), str(tmp_path / "missing.jpg")])
    out, err = capsys.readouterr()
    recs = {os.path.basename(r["path"]): r for r in map(json.loads, out.splitlines())}
    assert code == 1
    assert set(recs) == {
        "good.jpg",
        "empty.jpg",
        "truncated.jpg",
        "text.jpg",
        "one_pixel.png",
        "rgba.png",
        "grey16.png",
        "huge.jpg",
        "bomb.png",
        "missing.jpg",
    }
    for name in ("good.jpg", "rgba.png", "grey16.png", "huge.jpg"):
        assert recs[name]["error"] is None, name
    assert recs["good.jpg"]["label"] == "paper"  # paper_trashnet_paper104.jpg
    for name in ("rgba.png", "huge.jpg"):  # the same photo, other encodings
        assert recs[name]["label"] == "paper", name
    assert recs["one_pixel.png"]["error"] is None  # tiny, but an image: classified
    unreadable = "not a readable image (corrupt or unsupported format"
    errors = {  # images.read_rgb's reasons, and the CLI's for a path that is not there
        folder / "bomb.png": "image is 30000x30000 (900 MP), over the 50 MP limit; resize it first",
        folder / "empty.jpg": "file is empty",
        folder / "text.jpg": unreadable + "; use JPEG, PNG, BMP, WebP or TIFF)",  # no header
        folder / "truncated.jpg": unreadable + ")",  # a JPEG header, no picture after it
        tmp_path / "missing.jpg": "no such file or folder",
    }
    for path, reason in errors.items():
        assert recs[path.name]["error"] == reason, path.name
    assert err.splitlines() == [
        f"waste-vision: {path}: {reason}" for path, reason in errors.items()
    ]


def test_unreadable_permissions(tmp_path, capsys):
    path = tmp_path / "locked.jpg"
    shutil.copy(SAMPLES / "glass_trashnet_glass102.jpg", path)
    path.chmod(0)
    try:
        readable = os.access(path, os.R_OK)  # root reads anything: then it is just classified
        code = main(["classify", "--format", "jsonl", str(path)])
        rec = json.loads(capsys.readouterr().out)
        assert code == (0 if readable else 1)
        assert (rec["error"] is None) == readable
    finally:
        path.chmod(0o644)


def test_mismatched_and_corrupt_models_exit_2(tmp_path, capsys):
    def three_labels(manifest: dict) -> None:
        manifest["stages"][1]["labels"] = ["a", "b", "c"]

    models = litert_models_copy(tmp_path / "models", three_labels)
    assert main(["classify", "--models", str(models), str(SAMPLES)]) == 2
    err = capsys.readouterr().err
    assert "lists 3 labels but its model has 5 outputs" in err and len(err.splitlines()) == 1
    (models / "cascade.json").write_text("{]")
    assert (
        main(
            [
                "annotate",
                str(ROOT / "tests" / "fixtures" / "slideshow.mp4"),
                "-o",
                str(tmp_path / "o.mp4"),
                "--models",
                str(models),
            ]
        )
        == 2
    )
    assert "not valid JSON" in capsys.readouterr().err


def test_video_cut_in_half_is_a_clear_error(tmp_path, capsys):
    cut = tmp_path / "half.mp4"
    data = (ROOT / "tests" / "fixtures" / "slideshow.mp4").read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    code = main(["annotate", str(cut), "-o", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err
    # a cut MP4 loses its index (written last) and does not open: the call cannot work
    assert code == 2
    assert err.splitlines() == [
        f"waste-vision: error: {cut}: OpenCV cannot open this video (damaged, cut short or an "
        "unsupported format); re-encode it, e.g. to MP4 (H.264)"
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=2048), st.integers(0, 3000), st.binary(max_size=16))
def test_fuzz_image_decoding(tmp_path, junk, cut, patch):
    """Random bytes, and a real JPEG cut and patched at random: an image or ImageReadError."""
    real = (SAMPLES / "glass_trashnet_glass102.jpg").read_bytes()
    mutated = real[:cut] + patch + real[cut + len(patch) :]
    for i, data in enumerate((junk, mutated)):
        path = tmp_path / f"fuzz{i}.jpg"
        path.write_bytes(data)
        try:
            image = read_rgb(path)
        except ImageReadError as exc:
            assert str(exc) and "\n" not in str(exc)
        else:
            assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 5000)
    | st.floats(allow_nan=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    json_values,
    st.integers(0, 1),
    st.sampled_from(["name", "labels", "input_size", "threshold", "keras", "tflite", "metrics"]),
)
def test_fuzz_manifest(tmp_path, value, stage, key):
    """The real manifest with one field replaced by arbitrary JSON, or arbitrary JSON whole."""
    real = json.loads((ROOT / "models" / "cascade.json").read_text())
    for candidate in (value, real):
        if candidate is real:
            candidate = json.loads(json.dumps(real))
            candidate["stages"][stage][key] = value
        (tmp_path / "cascade.json").write_text(json.dumps(candidate))
        for name in (
            "stage1_organic_recyclable.tflite",
            "stage2_material.tflite",
            "stage1_organic_recyclable.keras",
            "stage2_material.keras",
        ):
            if not (tmp_path / name).exists():
                (tmp_path / name).write_bytes(b"x")
        try:
            load_manifest(tmp_path)
        except UserError as exc:
            assert str(exc) and "\n" not in str(exc) and exc.exit_code == 2
