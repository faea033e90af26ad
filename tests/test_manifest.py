"""Manifest loading: the shipped one is valid, and each kind of fault gives a clear UserError."""

from __future__ import annotations

import json
import shutil

import pytest

from waste_vision.cascade import Cascade
from waste_vision.errors import UserError
from waste_vision.manifest import load_manifest


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
    assert [s.name for s in m.stages] == ["organic-recyclable", "material"]
    assert m.stages[0].labels == ["organic", "recyclable"]
    assert m.stages[1].labels == ["cardboard", "glass", "metal", "paper", "plastic"]
    assert 0 < m.stages[0].threshold < 1
    for s in m.stages:
        assert s.keras.is_file() and s.tflite.is_file()
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


@pytest.mark.parametrize("change, message", [
    (lambda d: d["stages"].pop(), "must list the 2 stages"),
    (lambda d: d["stages"].reverse(), "must be named 'organic-recyclable'"),
    (lambda d: d["stages"][0].update(threshold=1.5), "threshold must be a number in"),
    (lambda d: d["stages"][1].update(labels=["glass"]), "at least two distinct labels"),
    (lambda d: d["stages"][1].update(input_size=[224]), "input_size"),
])
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
