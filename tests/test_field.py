"""The field suite and its data: conveyor crops, held-out unknown items, fixed stresses, the
epoch rule, and the suite end to end on a few real photos with the shipped models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from waste_vision.images import read_rgb
from waste_vision.training.field import MATERIALS as MATERIALS_ORDER
from waste_vision.training.field import PARTS, Stress, stressed
from waste_vision.training.field import main as field_main
from waste_vision.training.field_train import choose_epoch
from waste_vision.training.fielddata import (
    LABTRASH_VALID_SESSIONS,
    held_out,
    labtrash_crops,
    labtrash_frames,
    unknown_items,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "assets" / "samples" / "plastic_trashnet_plastic1.jpg"


def sharpness(rgb):
    return float(cv2.Laplacian(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var())


def test_stresses_are_fixed_and_do_what_they_say():
    rgb = read_rgb(SAMPLE)
    plain = stressed(rgb, Stress.NONE, 0)
    assert plain.shape == (224, 224, 3) and plain.dtype == np.uint8
    for stress in Stress:
        assert np.array_equal(stressed(rgb, stress, 3), stressed(rgb, stress, 3))
    assert sharpness(stressed(rgb, Stress.BLUR, 0)) < 0.5 * sharpness(plain)
    assert stressed(rgb, Stress.DARK, 0).mean() < 0.5 * plain.mean()
    # on cardboard: the white board is gone, the frame turns brown (red over blue)
    board = stressed(rgb, Stress.ON_CARDBOARD, 0).astype(int)
    assert (
        board[..., 0].mean() - board[..., 2].mean()
        > 30
        > plain[..., 0].mean() - plain[..., 2].mean()
    )
    # small in frame: the concrete border around the item is grey and darker than the board
    small = stressed(rgb, Stress.SMALL, 0)
    assert small[:20].mean() < plain[:20].mean() - 30


def test_labtrash_training_leaves_out_the_validation_sessions(shared_datasets):
    root = shared_datasets / "labtrash"
    train = labtrash_frames(root, "train")
    sessions = {Path(f).name.split("_")[0] for f, _ in train}
    assert sessions and not sessions & set(LABTRASH_VALID_SESSIONS)
    valid = labtrash_frames(root, "valid")
    assert {Path(f).name.split("_")[0] for f, _ in valid} <= set(LABTRASH_VALID_SESSIONS)


def test_labtrash_crops_map_classes_and_pad(tmp_path, shared_datasets):
    src = shared_datasets / "labtrash" / "valid"
    image = sorted((src / "images").glob("*.jpg"))[0]
    (tmp_path / "valid" / "images").mkdir(parents=True)
    (tmp_path / "valid" / "labels").mkdir(parents=True)
    os.symlink(image, tmp_path / "valid" / "images" / image.name)
    # one box of each labtrash class, 0.2 x 0.2 of the 640 x 480 frame
    (tmp_path / "valid" / "labels" / f"{image.stem}.txt").write_text(
        "0 0.3 0.3 0.2 0.2\n1 0.5 0.5 0.2 0.2\n2 0.7 0.7 0.2 0.2\n3 0.5 0.3 0.2 0.2\n"
    )
    crops = labtrash_crops(tmp_path, "valid", pad=0.1)
    assert crops.labels == [0, 2, 4, 4]  # cardboard, metal, plastic, plastic
    h, w = read_rgb(image).shape[:2]
    assert (
        crops.images[0].shape[:2] == (int(0.24 * h), int(0.24 * w))
        or abs(crops.images[0].shape[0] - 0.24 * h) <= 2
    )


def test_unknown_items_split_is_fixed_and_disjoint(shared_datasets):
    other = shared_datasets / "garbage12-other"
    train, val = unknown_items(other, None, "TRAIN"), unknown_items(other, None, "VALIDATION")
    assert not set(train) & set(val)
    total = len(train) + len(val)
    assert 0.2 < len(val) / total < 0.4
    # the split depends on the name only, not on where or in which order files are listed
    assert all(held_out(p) == held_out(Path("/elsewhere") / p.name) for p in val[:20])
    assert {p.parent.name for p in val} == {"battery", "clothes", "shoes", "trash"}


def test_choose_epoch_guards_clean_accuracy():
    history = [
        {"epoch": 0, "clean_acc": 0.97, "field_score": 0.40},
        {"epoch": 1, "clean_acc": 0.965, "field_score": 0.60},
        {"epoch": 2, "clean_acc": 0.95, "field_score": 0.80},  # too far below
        {"epoch": 3, "clean_acc": 0.962, "field_score": 0.55},
    ]
    assert choose_epoch(history, 0.01) == 1
    assert choose_epoch(history, 0.03) == 2
    assert choose_epoch(history[:1] + history[2:3], 0.01) == 0
    # a source's own accuracy counts too, not only the whole set's
    history = [
        {"epoch": 0, "clean_acc": 0.97, "clean_acc_trashnet": 0.95, "field_score": 0.4},
        {"epoch": 1, "clean_acc": 0.97, "clean_acc_trashnet": 0.93, "field_score": 0.7},
        {"epoch": 2, "clean_acc": 0.965, "clean_acc_trashnet": 0.945, "field_score": 0.6},
    ]
    assert choose_epoch(history, 0.01) == 2


def _tiny_split(root: Path, source: Path, classes, n=2):
    for cls in classes:
        folder = root / "VALIDATION" / cls
        folder.mkdir(parents=True)
        for p in sorted((source / cls).iterdir())[:n]:
            os.symlink(p, folder / p.name)
    return root


def test_field_suite_end_to_end(tmp_path, shared_datasets):
    """On a few real validation-style photos with the shipped models: every part is there,
    the figures are percentages, the plot is written."""
    materials = _tiny_split(
        tmp_path / "trashnet-split",
        shared_datasets / "trashnet",
        ["cardboard", "glass", "metal", "paper", "plastic", "trash"],
    )
    stage1 = _tiny_split(
        tmp_path / "kaggle-split", shared_datasets / "kaggle-or-subset" / "TEST", ["O", "R"]
    )
    other = tmp_path / "other"
    for cls in ("battery", "shoes"):
        (other / cls).mkdir(parents=True)
        for p in sorted((shared_datasets / "garbage12-other" / cls).iterdir()):
            if held_out(p):
                os.symlink(p, other / cls / p.name)
                break
    out = tmp_path / "report"
    field_main(
        [
            "--models",
            str(ROOT / "models"),
            "--out",
            str(out),
            "--material-data",
            str(materials),
            "--material-extra",
            str(materials),
            "--stage1-data",
            str(stage1),
            "--labtrash",
            str(shared_datasets / "labtrash"),
            "--other",
            str(other),
            "--max-labtrash",
            "12",
        ]
    )
    report = json.loads((out / "field.json").read_text())
    assert set(report["parts"]) == set(PARTS)
    assert all(0 <= v <= 100 for v in report["parts"].values())
    assert report["counts"]["unknown_validation"] == 2 + 2  # 2 garbage12-other + 2 trash
    labels = report["unknown_final_labels"]
    not_material = sum(n for k, n in labels.items() if k not in MATERIALS_ORDER)
    assert report["unknown_not_a_material"] == round(100 * not_material / 4, 2)
    assert report["unknown_not_a_material"] >= report["parts"]["unknown"]
    assert report["counts"]["labtrash_validation_crops"] == 12
    assert abs(report["mean"] - np.mean(list(report["parts"].values()))) < 0.01
    assert (out / "field.png").stat().st_size > 5000
    # the hand-picked sets' photos are not in this tiny work folder: named as missing
    assert all(
        r == {"photos": 0, "missing": n}
        for r, n in zip(report["named_sets"].values(), (32, 9, 7), strict=True)
    )

    # the same suite through evaluate (--stage field --data WORK), beside the other reports
    from argparse import Namespace

    from waste_vision.training.evaluate import evaluate_stage

    work = tmp_path / "work"
    work.mkdir()
    for name, target in (
        ("trashnet-split", materials),
        ("garbage12-split", materials),
        ("kaggle-or-split", stage1),
    ):
        os.symlink(target, work / name)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.symlink(other, shared / "garbage12-other")
    os.symlink(shared_datasets / "labtrash", shared / "labtrash")
    report = evaluate_stage(
        Namespace(
            stage="field",
            data=work,
            models=ROOT / "models",
            reports=tmp_path / "reports",
            name=None,
            shared=shared,
        )
    )
    assert (tmp_path / "reports" / "field" / "field.json").is_file()
    assert report["counts"]["labtrash_validation_crops"] == 480


def test_field_suite_names_a_missing_split(tmp_path):
    from waste_vision.errors import UserError
    from waste_vision.training.field import write_report

    with pytest.raises(UserError, match="VALIDATION does not exist: run 'waste-vision data"):
        write_report(
            ROOT / "models",
            tmp_path / "out",
            tmp_path / "nowhere",
            [],
            tmp_path / "nowhere",
            tmp_path,
            tmp_path,
        )
    assert not (tmp_path / "out").exists()


def _tiny_field_data(tmp_path: Path, shared_datasets: Path, batteries: int) -> tuple[Path, Path]:
    """(labtrash, other): one labtrash frame of a train and of a valid session, and the first
    ``batteries`` garbage12-other battery photos, linked under ``tmp_path``."""
    labtrash = tmp_path / "labtrash"
    lt = shared_datasets / "labtrash"
    for split, session in (("train", "labtrash1"), ("valid", "labtrash3")):
        for sub in ("images", "labels"):
            (labtrash / split / sub).mkdir(parents=True)
        image = sorted((lt / split / "images").glob(f"{session}_*.jpg"))[0]
        os.symlink(image, labtrash / split / "images" / image.name)
        os.symlink(
            lt / split / "labels" / f"{image.stem}.txt",
            labtrash / split / "labels" / f"{image.stem}.txt",
        )
    other = tmp_path / "other"
    (other / "battery").mkdir(parents=True)
    for p in sorted((shared_datasets / "garbage12-other" / "battery").iterdir())[:batteries]:
        os.symlink(p, other / "battery" / p.name)
    return labtrash, other


def _tiny_run(tmp_path: Path, labtrash: Path, other: Path) -> list[str]:
    """The options of a one-epoch field run on the tiny data, caches under ``tmp_path``."""
    return [
        "--labtrash",
        str(labtrash),
        "--other",
        str(other),
        "--views",
        "2",
        "--epochs",
        "1",
        "--batch",
        "4",
        "--max-clean-drop",
        "1.0",
        "--cache",
        str(tmp_path / "cache"),
        "--run-dir",
        str(tmp_path / "run"),
    ]


@pytest.mark.slow  # a minute of training
def test_field_training_end_to_end(tmp_path, shared_datasets):
    """A tiny field run from the shipped models: stage 1 and the trunk are left exactly as
    shipped, the new material stage and the fused model are written, the manifest keeps the
    decision rule and drops the int8 model (made for the old tail)."""
    from waste_vision.model.cascade import Cascade
    from waste_vision.training.field_train import main as field_train_main

    materials = tmp_path / "trashnet-split"
    for split, (start, n) in {"TRAIN": (0, 2), "VALIDATION": (2, 2)}.items():
        for cls in ("cardboard", "glass", "metal", "paper", "plastic", "trash"):
            folder = materials / split / cls
            folder.mkdir(parents=True)
            for p in sorted((shared_datasets / "trashnet" / cls).iterdir())[start : start + n]:
                os.symlink(p, folder / p.name)
    labtrash, other = _tiny_field_data(tmp_path, shared_datasets, batteries=6)
    out = tmp_path / "models"
    field_train_main(
        [
            "--models",
            str(ROOT / "models"),
            "--out",
            str(out),
            "--material-data",
            str(materials),
            *_tiny_run(tmp_path, labtrash, other),
        ]
    )
    shipped = ROOT / "models"
    for ext in (".keras", ".tflite", ".json"):
        name = f"stage1_organic_recyclable{ext}"
        assert (out / name).read_bytes() == (shipped / name).read_bytes()
    manifest = json.loads((out / "cascade.json").read_text())
    assert manifest["decision"] == json.loads((shipped / "cascade.json").read_text())["decision"]
    assert "fused_int8" not in manifest and manifest["fused"]["tflite"] == "cascade_fused.tflite"
    summary = json.loads((out / "stage2_material.json").read_text())
    assert summary["field"]["epochs_run"] == 1 and summary["temperature"] > 0
    # the exported cascade runs, and its stage 1 gives the shipped model's answer
    rgb = read_rgb(SAMPLE)
    new = Cascade(out, backend="litert").classify(rgb, all_stages=True)
    old = Cascade(shipped, backend="litert").classify(rgb, all_stages=True)
    assert abs(new.stage1.probabilities[1] - old.stage1.probabilities[1]) < 1e-3
    assert abs(sum(new.stage2.probabilities) - 1) < 1e-4


@pytest.mark.slow  # a minute of training
def test_field_training_stage1_end_to_end(tmp_path, shared_datasets):
    """A tiny stage-1 field run: the material stage and the reference embeddings are copied
    exactly as shipped, a new stage 1 and fused model are written, and the exported cascade's
    material probabilities and embedding are the shipped ones."""
    from waste_vision.model.cascade import Cascade
    from waste_vision.training.field_train import main as field_train_main

    stage1 = tmp_path / "kaggle-or-split"
    src = shared_datasets / "trashnet"
    for split, (start, n) in {"TRAIN": (0, 3), "VALIDATION": (3, 2)}.items():
        for cls, photos in (("O", "trash"), ("R", "glass")):
            folder = stage1 / split / cls
            folder.mkdir(parents=True)
            for p in sorted((src / photos).iterdir())[start : start + n]:
                os.symlink(p, folder / p.name)
    labtrash, other = _tiny_field_data(tmp_path, shared_datasets, batteries=10)
    out = tmp_path / "models"
    field_train_main(
        [
            "--stage",
            "organic-recyclable",
            "--models",
            str(ROOT / "models"),
            "--out",
            str(out),
            "--stage1-data",
            str(stage1),
            "--material-data",
            str(stage1),
            *_tiny_run(tmp_path, labtrash, other),
        ]
    )
    shipped = ROOT / "models"
    for name in (
        "stage2_material.keras",
        "stage2_material.tflite",
        "stage2_material.json",
        "reference_embeddings.npz",
    ):
        assert (out / name).read_bytes() == (shipped / name).read_bytes(), name
    manifest = json.loads((out / "cascade.json").read_text())
    old_manifest = json.loads((shipped / "cascade.json").read_text())
    assert manifest["decision"] == old_manifest["decision"]
    assert manifest["reference"] == old_manifest["reference"]
    assert manifest["fused"]["outputs"] == ["stage1", "stage2", "embedding"]
    assert "fused_int8" not in manifest
    summary = json.loads((out / "stage1_organic_recyclable.json").read_text())
    assert summary["field"]["epochs_run"] == 1 and summary["field"]["oe_weight"] == 0.0
    assert "field_acc" in summary["field"]["history"][1]
    assert not any(k.startswith("val_on_board") for k in summary)
    rgb = read_rgb(SAMPLE)
    new = Cascade(out, backend="litert").classify(rgb, all_stages=True)
    old = Cascade(shipped, backend="litert").classify(rgb, all_stages=True)
    assert np.allclose(new.stage2.probabilities, old.stage2.probabilities, atol=1e-3)
    assert new.embedding is not None and old.embedding is not None
    assert np.allclose(new.embedding, old.embedding, atol=1e-2 * np.abs(old.embedding).max())


def test_evaluate_field_refuses_update_manifest(tmp_path, capsys):
    """The field suite is validation only: recording it as test figures is one line, exit 2,
    and nothing is written."""
    from waste_vision.commands.cli import main

    code = main(
        [
            "evaluate",
            "--stage",
            "field",
            "--data",
            str(tmp_path),
            "--update-manifest",
            "--reports",
            str(tmp_path / "reports"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--update-manifest records test figures" in err[0]
    assert not (tmp_path / "reports").exists()


def test_named_confusion_sets_are_validation_photos_of_a_material():
    """The hand-picked confusion sets name a material each and only VALIDATION photos of a
    split folder (never TEST: the suite chooses models), none twice."""
    from waste_vision.training.field import MATERIALS, NAMED_SETS

    spec = json.loads(NAMED_SETS.read_text())
    seen: set[str] = set()
    assert len(spec["sets"]) == 3
    for name, entry in spec["sets"].items():
        assert entry["label"] in MATERIALS, name
        for photo in entry["photos"]:
            parts = Path(photo).parts
            assert parts[0].endswith("-split") and parts[1] == "VALIDATION", photo
            assert photo not in seen
            seen.add(photo)


def test_update_manifest_keeps_the_reference_only_for_the_same_material_stage(
    tmp_path, monkeypatch, capsys
):
    """The reference embeddings come from the material tail: a retrained material stage drops
    them from the manifest (with a line saying how to remake them), a retrained stage 1 keeps
    them, and the decision rule is kept either way."""
    import shutil

    from waste_vision.training import train

    monkeypatch.setattr(train, "export_fused", lambda *a: None)  # no Keras models here
    shipped = json.loads((ROOT / "models" / "cascade.json").read_text())
    for changed, kept in (("organic-recyclable", True), ("material", False)):
        models = tmp_path / changed
        models.mkdir()
        shutil.copy(ROOT / "models" / "cascade.json", models / "cascade.json")
        shutil.copy(ROOT / "models" / shipped["reference"]["file"], models)
        for stage, stem in train.STAGE_FILES.items():
            summary = json.loads((ROOT / "models" / f"{stem}.json").read_text())
            if stage == changed:
                summary["val_accuracy"] -= 0.01
            (models / f"{stem}.json").write_text(json.dumps(summary))
        train.update_manifest(models)
        manifest = json.loads((models / "cascade.json").read_text())
        assert ("reference" in manifest) is kept, changed
        assert manifest["decision"] == shipped["decision"]
        out = capsys.readouterr().out
        assert ("python -m waste_vision.training.reference" in out) is not kept
