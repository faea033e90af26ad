"""Manifest loading: the shipped one is valid, and each kind of fault gives a clear UserError."""

from __future__ import annotations

import argparse
import errno
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from waste_vision.errors import UserError
from waste_vision.images import read_rgb
from waste_vision.model.cascade import Cascade
from waste_vision.model.manifest import load_manifest


@pytest.fixture()
def models_copy(tmp_path, models_dir):
    """A copy of the shipped models (tflite and manifest only: cheap to copy)."""
    dst = tmp_path / "models"
    dst.mkdir()
    manifest = json.loads((models_dir / "cascade.json").read_text())
    for stage in manifest["stages"]:
        shutil.copy(models_dir / stage["tflite"], dst / stage["tflite"])
        stage["keras"] = None
    manifest.pop("fused", None)
    manifest.pop("reference", None)
    manifest.pop("fused_int8", None)
    (dst / "cascade.json").write_text(json.dumps(manifest))
    return dst


def _edit(models, change):
    path = models / "cascade.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_shipped_manifest_is_valid(models_dir):
    m = load_manifest(models_dir)
    raw = json.loads((models_dir / "cascade.json").read_text())
    assert [s.name for s in m.stages] == ["organic-recyclable", "material"]
    assert m.stages[0].labels == ["organic", "recyclable"]
    assert m.stages[1].labels == ["cardboard", "glass", "metal", "paper", "plastic"]
    assert 0 < m.stages[0].threshold < 1
    for s, entry in zip(m.stages, raw["stages"], strict=True):  # read as written
        assert s.threshold == entry.get("threshold", 0.5)  # 0.5 where none is written
        assert s.keras == models_dir / entry["keras"] and s.keras.is_file()
        assert s.tflite == models_dir / entry["tflite"] and s.tflite.is_file()
        assert s.input_size == (224, 224)


def test_models_folder_under_50_mb(models_dir):
    size = sum(p.stat().st_size for p in models_dir.rglob("*") if p.is_file())
    assert size < 50 * 1024 * 1024, f"models/ is {size / 2**20:.1f} MB"


def test_missing_folder_names_the_path(tmp_path):
    with pytest.raises(UserError, match=str(tmp_path / "nope")) as err:
        load_manifest(tmp_path / "nope")
    assert err.value.exit_code == 2


def test_missing_manifest(tmp_path):
    with pytest.raises(UserError, match="cascade.json is missing"):
        load_manifest(tmp_path)


def test_invalid_json(models_copy):
    (models_copy / "cascade.json").write_text("{not json")
    with pytest.raises(UserError, match="not valid JSON"):
        load_manifest(models_copy)


def test_missing_model_file(models_copy):
    (models_copy / load_manifest(models_copy).stages[1].tflite.name).unlink()
    with pytest.raises(UserError, match="tflite file .* is missing"):
        load_manifest(models_copy)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["stages"].pop(), "must list the 2 stages"),
        (lambda d: d["stages"].reverse(), "must be named 'organic-recyclable'"),
        (lambda d: d["stages"][0].update(threshold=1.5), "threshold must be a number in"),
        (lambda d: d["stages"][1].update(labels=["glass"]), "at least two distinct labels"),
        (lambda d: d["stages"][1].update(input_size=[224]), "input_size"),
    ],
)
def test_malformed_manifest(models_copy, change, message):
    _edit(models_copy, change)
    with pytest.raises(UserError, match=message):
        load_manifest(models_copy)


def test_label_count_must_match_model_outputs(models_copy):
    _edit(models_copy, lambda d: d["stages"][1]["labels"].append("trash"))
    with pytest.raises(UserError, match="lists 6 labels but its model has 5 outputs"):
        Cascade(models_copy, backend="litert")


def test_corrupt_model_file(models_copy):
    name = load_manifest(models_copy).stages[0].tflite.name
    (models_copy / name).write_bytes(b"garbage" * 100)
    with pytest.raises(UserError, match="not a valid .tflite model"):
        Cascade(models_copy, backend="litert")


def test_fused_int8_entry_is_checked(models_copy):
    _edit(models_copy, lambda d: d.update(fused_int8="cascade_fused_int8.tflite"))
    with pytest.raises(UserError, match="'fused_int8' must be an object"):
        load_manifest(models_copy)
    _edit(models_copy, lambda d: d.update(fused_int8={"tflite": "gone.tflite"}))
    with pytest.raises(UserError, match="gone.tflite"):
        load_manifest(models_copy)


# -- evaluate and the manifest ---------------------------------------------------------------


def _material_test_folder(root):
    """The sample photos as a material test set: one class folder per material."""
    for photo in (ROOT / "assets" / "samples").glob("*.jpg"):
        material = photo.name.split("_")[0]
        if material in ("cardboard", "glass", "metal", "paper", "plastic"):
            (root / material).mkdir(parents=True, exist_ok=True)
            shutil.copy(photo, root / material / photo.name)
    return root


def _evaluate(models, data, reports, **flags):
    pytest.importorskip("matplotlib")
    from waste_vision.training.evaluate import evaluate_stage

    args = argparse.Namespace(
        stage="material", data=data, models=models, reports=reports, name=None, **flags
    )
    return evaluate_stage(args)


def test_evaluate_leaves_the_manifest_alone_by_default(models_copy, tmp_path):
    data = _material_test_folder(tmp_path / "test")
    before = (models_copy / "cascade.json").read_bytes()
    metrics = _evaluate(models_copy, data, tmp_path / "reports", update_manifest=False)
    photos = len(list(data.rglob("*.jpg")))  # the material samples: 12 less the 2 organic
    assert metrics["images"] == photos == 10
    assert (models_copy / "cascade.json").read_bytes() == before
    report = tmp_path / "reports" / "material"
    assert json.loads((report / "metrics.json").read_text()) == metrics
    confusion = read_rgb(report / "confusion.png")  # a real picture, not just bytes
    assert confusion.shape[0] > 100 and confusion.shape[1] > 100
    # an args object from before the flag existed: the same
    _evaluate(models_copy, data, tmp_path / "reports")
    assert (models_copy / "cascade.json").read_bytes() == before


def test_evaluate_update_manifest_records_the_figures(models_copy, tmp_path):
    data = _material_test_folder(tmp_path / "test")
    (models_copy / "cascade.json").chmod(0o640)
    metrics = _evaluate(models_copy, data, tmp_path / "reports", update_manifest=True)
    manifest = json.loads((models_copy / "cascade.json").read_text())
    entry = manifest["stages"][1]["metrics"]
    assert entry["test_images"] == 10 and entry["test_accuracy"] == metrics["accuracy"]
    assert load_manifest(models_copy).stages[1].labels[0] == "cardboard"  # still valid
    assert sorted(p.name for p in models_copy.iterdir() if p.name.startswith(".")) == []
    assert (models_copy / "cascade.json").stat().st_mode & 0o777 == 0o640


_FULL_DISK = """
import json, resource, signal, sys
from pathlib import Path
from waste_vision.training.evaluate import record_in_manifest
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), resource.RLIM_INFINITY))
metrics = {"accuracy": 0.5, "images": 3, "expected_calibration_error": 0.1,
           "final_label": {"coverage": 1.0}, "roc_auc": 0.9}
try:
    record_in_manifest(Path(sys.argv[1]), 0, metrics)
except OSError as exc:
    print("failed:", exc)
"""


def test_a_write_that_fails_half_way_leaves_the_old_manifest(models_copy):
    """The disk fills up while the manifest is written (a file size limit stands for it)."""
    path = models_copy / "cascade.json"
    before = path.read_bytes()
    limit = len(before) // 2  # the new text is longer than this: its write fails mid-way
    run = subprocess.run(
        [sys.executable, "-c", _FULL_DISK, str(models_copy), str(limit)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    # the file-size limit's EFBIG, raised by the write itself
    assert run.stdout == f"failed: [Errno {errno.EFBIG}] {os.strerror(errno.EFBIG)}\n", run.stderr
    assert path.read_bytes() == before  # old text, complete
    assert not [p for p in models_copy.iterdir() if p.name.startswith(".")]  # no temp left


def test_a_crash_before_the_rename_leaves_the_old_manifest(models_copy, monkeypatch):
    from waste_vision import files
    from waste_vision.training import evaluate

    path = models_copy / "cascade.json"
    before = path.read_bytes()

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", crash)  # the one atomic writer (files.py)
    with pytest.raises(KeyboardInterrupt):
        evaluate.record_in_manifest(
            models_copy,
            0,
            {"accuracy": 0.5, "images": 3, "expected_calibration_error": 0.1, "final_label": {}},
        )
    assert path.read_bytes() == before
    assert not [p for p in models_copy.iterdir() if p.name.startswith(".")]
