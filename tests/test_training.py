"""The training pipeline end to end on a handful of real photos: train both stages for one
epoch each, then the manifest, the fused model and the run-time cascade must all work.

This checks the plumbing (caching, export, calibration, manifest), not accuracy.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from waste_vision.commands.cli import main
from waste_vision.images import read_rgb, resize_for_model
from waste_vision.model.cascade import Cascade
from waste_vision.training.export import tflite_outputs

# each test trains or exports models: minutes on two cores, so part of the slow run (CI)
pytestmark = pytest.mark.slow


def _tiny_split(root, source, classes, per_split=(4, 2)):
    for cls in classes:
        photos = sorted((source / cls).iterdir())
        for split, (start, n) in {
            "TRAIN": (0, per_split[0]),
            "VALIDATION": (per_split[0], per_split[1]),
        }.items():
            folder = root / split / cls
            folder.mkdir(parents=True)
            for p in photos[start : start + n]:
                os.symlink(p, folder / p.name)
    return root


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_datasets):
    tmp = tmp_path_factory.mktemp("train")
    materials = _tiny_split(
        tmp / "materials",
        shared_datasets / "trashnet",
        ["cardboard", "glass", "metal", "paper", "plastic"],
    )
    organic = _tiny_split(tmp / "or", shared_datasets / "kaggle-or-subset" / "TRAIN", ["O", "R"])
    out = tmp / "models"
    common = [
        "--out",
        str(out),
        "--cache",
        str(tmp / "cache"),
        "--views",
        "2",
        "--warmup-epochs",
        "1",
        "--epochs",
        "1",
    ]
    assert main(["train", "--stage", "material", "--data", str(materials), *common]) == 0
    assert not (out / "cascade.json").exists()  # one stage is not a cascade yet
    assert (
        main(
            [
                "train",
                "--stage",
                "organic-recyclable",
                "--data",
                str(organic),
                "--extra-recyclable",
                str(materials),
                *common,
            ]
        )
        == 0
    )
    return out


def test_stage_files_and_summary(trained):
    for stem in ("stage1_organic_recyclable", "stage2_material"):
        for ext in (".keras", ".tflite", ".json"):
            assert (trained / f"{stem}{ext}").is_file()
    summary = json.loads((trained / "stage1_organic_recyclable.json").read_text())
    assert 0 < summary["threshold"] < 1 and summary["temperature"] > 0
    assert summary["train_images"] == 8 + 20  # 4 O + 4 R + 4 x 5 materials as recyclable


def test_manifest_fused_and_cascade(trained, shared_datasets):
    manifest = json.loads((trained / "cascade.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["organic-recyclable", "material"]
    assert manifest["fused"]["tflite"] == "cascade_fused.tflite"
    rgb = read_rgb(shared_datasets / "trashnet" / "glass" / "glass10.jpg")
    result = Cascade(trained, backend="litert").classify(rgb, all_stages=True)
    assert abs(sum(result.stage2.probabilities) - 1) < 1e-4
    assert 0 <= result.stage1.score <= 1


def test_tflite_matches_keras_export(trained, shared_datasets):
    import keras

    x = resize_for_model(
        read_rgb(shared_datasets / "trashnet" / "metal" / "metal10.jpg"), (224, 224)
    )
    model = keras.models.load_model(trained / "stage2_material.keras", compile=False)
    expected = np.asarray(model(x[None]), dtype=np.float32)
    np.testing.assert_allclose(
        tflite_outputs(trained / "stage2_material.tflite", x)[0], expected, atol=1e-2
    )


def test_int8_fused_model_is_measured_and_listed(trained, tmp_path, shared_datasets):
    """quantize writes its report and lists the int8 model under 'fused_int8', keeping the
    float16 fused model as the default; the cascade runs on it with int8=True."""
    import shutil

    from waste_vision.training import quantize

    models = shutil.copytree(trained, tmp_path / "models")
    splits = trained.parent
    quantize.main(
        [
            "--models",
            str(models),
            "--count",
            "6",
            "--agreement",
            "10",
            "--float-layers",
            "2",
            "--calibration",
            str(splits / "materials" / "TRAIN"),
            str(splits / "or" / "TRAIN"),
            "--stage1-val",
            str(splits / "or" / "VALIDATION"),
            "--stage2-val",
            str(splits / "materials" / "VALIDATION"),
        ]
    )
    report = json.loads((models / "reports" / "fused_int8.json").read_text())
    assert report["calibration_photos"] == 6 and len(report["kept_float"]) == 2
    assert report["agreement_photos"] == 10 + 4 + 10  # further train photos + validation
    assert 0 <= report["stage1_flips"] <= report["agreement_photos"]
    assert 0 <= report["int8"]["stage1_val_accuracy"] <= 1 and report["int8"]["ms_per_call"] > 0
    manifest = json.loads((models / "cascade.json").read_text())
    assert manifest["fused_int8"]["tflite"] == quantize.INT8_FILE
    assert manifest["fused"]["tflite"] == "cascade_fused.tflite"
    cascade = Cascade(models, backend="litert", int8=True)
    assert cascade.uses_fused
    rgb = read_rgb(shared_datasets / "trashnet" / "glass" / "glass10.jpg")
    result = cascade.classify(rgb, all_stages=True)
    assert abs(sum(result.stage2.probabilities) - 1) < 0.02


def test_stages_tuned_to_different_depths_still_share_one_pass(trained, tmp_path, shared_datasets):
    """Stage 2 fine-tunes three blocks (split 13), stage 1 one (split 15): the fused model
    runs the shared 13 blocks once, reaches stage 1's split through the frozen blocks in
    between, and gives each stage's own outputs."""
    import shutil

    from waste_vision.training.fuse import export_fused

    splits = trained.parent
    deeper = tmp_path / "models"
    shutil.copytree(trained, deeper)
    assert (
        main(
            [
                "train",
                "--stage",
                "material",
                "--data",
                str(splits / "materials"),
                "--out",
                str(deeper),
                "--cache",
                str(splits / "cache"),
                "--views",
                "2",
                "--warmup-epochs",
                "1",
                "--epochs",
                "1",
                "--split-block",
                "13",
            ]
        )
        == 0
    )
    assert json.loads((deeper / "stage2_material.json").read_text())["split_block"] == 13
    fused = export_fused(
        deeper / "stage1_organic_recyclable.keras", deeper / "stage2_material.keras", tmp_path
    )
    assert fused is not None
    x = resize_for_model(
        read_rgb(shared_datasets / "trashnet" / "paper" / "paper10.jpg"), (224, 224)
    )
    # stage 1's P(recyclable), stage 2's probabilities, the embedding: told apart by size
    p1, p2, embedding = sorted(tflite_outputs(fused, x), key=lambda o: o.shape[-1])
    assert embedding.shape[-1] == 1280
    np.testing.assert_allclose(
        p1, tflite_outputs(deeper / "stage1_organic_recyclable.tflite", x)[0], atol=2e-2
    )
    np.testing.assert_allclose(
        p2, tflite_outputs(deeper / "stage2_material.tflite", x)[0], atol=2e-2
    )


def test_joint_fine_tuning_keeps_one_shared_trunk(trained, tmp_path, shared_datasets):
    """Fine-tuning the trunk on both stages at once: blocks from --from-block change, the
    ones before stay ImageNet's, both stages carry the very same trunk (so the fused model's
    single pass stays right), and the result loads as a cascade."""
    import keras

    from waste_vision.training import joint
    from waste_vision.training.backbone import trunk_model

    splits, out = trained.parent, tmp_path / "joint"
    joint.main(
        [
            "--models",
            str(trained),
            "--out",
            str(out),
            "--run-dir",
            str(tmp_path / "run"),
            "--stage1-data",
            str(splits / "or"),
            "--stage1-extra",
            str(splits / "materials"),
            "--material-data",
            str(splits / "materials"),
            "--from-block",
            "12",
            "--per-stage",
            "4",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "3",
            "--head-steps",
            "2",
            "--lr",
            "1e-2",
        ]
    )
    trunks = [
        keras.models.load_model(out / f"{stem}.keras", compile=False).get_layer("trunk")
        for stem in ("stage1_organic_recyclable", "stage2_material")
    ]
    imagenet = trunk_model("lite0", 15)
    changed = set()
    for layer in imagenet.layers:
        for w0, w1, w2 in zip(
            layer.get_weights(),
            *(t.get_layer(layer.name).get_weights() for t in trunks),
            strict=False,
        ):
            np.testing.assert_array_equal(w1, w2)
            # stored as float16: rounding moves a weight by <= 5e-4 of itself
            if np.any(np.abs(w1.astype(np.float32) - w0) > 1e-2 + 2e-3 * np.abs(w0)):
                changed.add(layer.name.split("_")[0])
    assert changed == {"block12", "block13", "block14"}
    summary = json.loads((out / "stage2_material.json").read_text())
    assert summary["joint"]["from_block"] == 12 and len(summary["joint"]["history"]) == 2
    rgb = read_rgb(shared_datasets / "trashnet" / "glass" / "glass10.jpg")
    result = Cascade(out, backend="litert").classify(rgb, all_stages=True)
    assert abs(sum(result.stage2.probabilities) - 1) < 1e-4
