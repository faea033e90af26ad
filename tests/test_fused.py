"""The shipped fused cascade (int8, see models/reports/fused_int8.json) must give the same
answers as the two float16 stage models.

Int8 activations round probabilities to steps of 1/256 and move them by up to a few
hundredths; the labels on the held-out sample photos must not change.
"""

from __future__ import annotations

from tests.conftest import ROOT
from waste_vision.cascade import Cascade
from waste_vision.images import read_rgb
from waste_vision.manifest import load_manifest


def test_manifest_ships_the_int8_fused_model(models_dir):
    assert load_manifest(models_dir).fused_tflite.name == "cascade_fused_int8.tflite"


def test_cascade_uses_fused_model_and_agrees_with_stages(models_dir):
    fused = Cascade(models_dir, backend="litert")
    separate = Cascade(models_dir, backend="litert", fused=False)
    assert fused.uses_fused and not separate.uses_fused
    for path in sorted((ROOT / "assets" / "samples").iterdir()):
        rgb = read_rgb(path)
        a, b = fused.classify(rgb, all_stages=True), separate.classify(rgb, all_stages=True)
        assert a.label == b.label, path.name
        assert abs(a.stage1.score - b.stage1.score) < 0.02, path.name
        if b.stage1.label == "recyclable":  # stage 2 on an organic item means nothing
            assert a.stage2.label == b.stage2.label, path.name
            assert abs(a.stage2.score - b.stage2.score) < 0.1, path.name
