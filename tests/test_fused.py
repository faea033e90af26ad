"""The fused cascade must give the same answers as the two stage models.

The fused model is built from the float16 ``.keras`` files and the stage ``.tflite`` files from
float32 weights, so BatchNorm is folded after vs before rounding: probabilities differ by a
few thousandths, never more than 0.01, and the labels agree.
"""

from __future__ import annotations

import numpy as np

from tests.conftest import ROOT
from waste_vision.images import read_rgb, resize_for_model
from waste_vision.model.manifest import load_manifest
from waste_vision.training.export import tflite_outputs


def test_fused_matches_stages(models_dir):
    manifest = load_manifest(models_dir)
    assert manifest.fused_tflite == models_dir / "cascade_fused.tflite"  # cascade.json's "fused"
    for name in ("glass_trashnet_glass102.jpg", "organic_garbage12_biological103.jpg"):
        x = resize_for_model(read_rgb(ROOT / "assets" / "samples" / name), (224, 224))
        fused = sorted(tflite_outputs(manifest.fused_tflite, x), key=lambda o: o.size)
        s1 = tflite_outputs(manifest.stages[0].tflite, x)[0]
        s2 = tflite_outputs(manifest.stages[1].tflite, x)[0]
        np.testing.assert_allclose(fused[0].ravel(), s1.ravel(), atol=1e-2)
        np.testing.assert_allclose(fused[1].ravel(), s2.ravel(), atol=1e-2)
        assert fused[1].argmax() == s2.argmax()


def test_cascade_uses_fused_model_and_agrees_with_stages(models_dir):
    from waste_vision.model.cascade import Cascade

    fused = Cascade(models_dir, backend="litert")
    separate = Cascade(models_dir, backend="litert", fused=False)
    assert fused.uses_fused and not separate.uses_fused
    for path in sorted((ROOT / "assets" / "samples").iterdir()):
        rgb = read_rgb(path)
        a, b = fused.classify(rgb, all_stages=True), separate.classify(rgb, all_stages=True)
        assert a.label == b.label, path.name
        assert abs(a.stage1.score - b.stage1.score) < 1e-2


def test_int8_fused_model_gives_the_same_labels(models_dir):
    """Int8 rounds probabilities to steps of 1/256 and moves them by up to a few hundredths
    (models/reports/fused_int8.json counts the decisions that flip); on the held-out sample
    photos the labels must not change."""
    from waste_vision.model.cascade import Cascade

    int8 = Cascade(models_dir, backend="litert", int8=True)
    plain = Cascade(models_dir, backend="litert")
    assert int8.uses_fused and int8._fused is not plain._fused
    for path in sorted((ROOT / "assets" / "samples").iterdir()):
        rgb = read_rgb(path)
        a, b = int8.classify(rgb), plain.classify(rgb)
        assert a.label == b.label, path.name
        assert abs(a.stage1.score - b.stage1.score) < 0.02, path.name


def test_int8_without_an_int8_model_is_a_clear_error(models_dir, tmp_path):
    import json
    import shutil

    import pytest

    from waste_vision.errors import UserError
    from waste_vision.model.cascade import Cascade

    models = shutil.copytree(models_dir, tmp_path / "models")
    manifest = json.loads((models / "cascade.json").read_text())
    manifest.pop("fused_int8")
    (models / "cascade.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match="--int8 needs .*fused_int8"):
        Cascade(models, backend="litert", int8=True)
