"""``waste-vision --self-test`` without a bundle, and where resources are found in and out of one."""

from __future__ import annotations

import io
import math
import re
import shutil
import sys
from pathlib import Path

import cv2
import pytest

from waste_vision import resources
from waste_vision.commands import selftest
from waste_vision.commands.cli import main

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
ASSETS = ROOT / "assets"


def _run(models: Path, assets: Path) -> tuple[int, str]:
    out = io.StringIO()
    code = selftest.run_selftest(models, assets, out=out)
    return code, out.getvalue()


def _line(report: str, name: str) -> str:
    return next(line for line in report.splitlines() if name in line)


def _labels(samples: Path) -> dict[str, str]:
    """What the shipped models say for each photo in ``samples``."""
    from waste_vision.images import read_rgb
    from waste_vision.model.cascade import Cascade

    cascade = Cascade(MODELS, backend="litert")
    return {p.name: cascade.classify(read_rgb(p)).label for p in sorted(samples.iterdir())}


def _models_copy(tmp_path: Path) -> Path:
    """The shipped models folder as symlinks, so a test can break one file cheaply."""
    dst = tmp_path / "models"
    dst.mkdir()
    for f in MODELS.iterdir():
        if f.is_file():
            (dst / f.name).symlink_to(f)
    return dst


def _assets_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "assets"
    shutil.copytree(ASSETS, dst)
    return dst


@pytest.mark.parametrize(
    "name, label",
    [
        ("glass_trashnet_glass102.jpg", "glass"),
        ("organic_kaggle_O_10211.jpg", "organic"),
        ("Cardboard100.JPG", "cardboard"),
        ("metal103.jpg", "metal"),
        ("paper125.jpg", "paper"),
        ("plastic_trashnet_plastic1.jpg", "plastic"),
        ("photo1.jpg", None),
    ],
)
def test_expected_label_from_file_name(name, label):
    assert selftest.expected_label(Path(name)) == label


def test_passes_with_the_shipped_models_and_assets():
    code, report = _run(MODELS, ASSETS)
    assert code == 0, report
    said = _labels(ASSETS / "samples")
    right = sum(label == selftest.expected_label(Path(name)) for name, label in said.items())
    floor = math.ceil(selftest.SAMPLE_FLOOR * len(said))
    line = _line(report, "samples")
    assert line.startswith("✓") and line.endswith(
        f"{right} of {len(said)} photos right (floor {floor})"
    )
    assert right >= floor  # what passing means
    line = _line(report, "models load")
    assert line.startswith("✓") and line.endswith(f"from {MODELS}")
    clip = cv2.VideoCapture(str(ASSETS / "demo.mp4"))
    size = f"{int(clip.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(clip.get(cv2.CAP_PROP_FRAME_HEIGHT))}"
    clip.release()
    line = _line(report, "demo clip")
    assert line.startswith("✓")
    assert line.endswith(f"{selftest.DEMO_FRAMES} frames {size} read and classified")
    assert report.splitlines()[-1].startswith("self-test: 3 checks, all passed")
    assert " ms " in _line(report, "models load")  # each check is timed
    assert len(report.splitlines()) <= 25  # one screen


def test_samples_below_the_floor_fail_with_a_clear_line(tmp_path):
    """Samples whose names claim the wrong class: a model that 'gets them wrong' fails."""
    assets = _assets_copy(tmp_path)
    samples = assets / "samples"
    for path in sorted(samples.iterdir()):
        claimed = "metal" if not path.name.startswith("metal") else "paper"
        path.rename(samples / f"{claimed}_{path.name}")
    code, report = _run(MODELS, assets)
    assert code == 1
    said = _labels(samples)
    claimed = {name: selftest.expected_label(Path(name)) for name in said}
    right = sum(said[name] == claimed[name] for name in said)
    floor = math.ceil(selftest.SAMPLE_FLOOR * len(said))
    assert right < floor  # the shipped models say the true class, not the claimed one
    line = _line(report, "samples")
    assert line.startswith("✗")
    head = f"{right} of {len(said)} photos right (floor {floor}); "
    misses = line.split(head, 1)[1].split("; ")
    assert [re.sub(r" \([\d.]+\)", "", m) for m in misses] == [  # less each score
        f"{name} said {said[name]}, expected {claimed[name]}"
        for name in said
        if said[name] != claimed[name]
    ]
    assert report.splitlines()[-1].startswith("self-test: 3 checks, 1 FAILED")


def test_corrupt_model_fails_with_a_clear_line(tmp_path):
    models = _models_copy(tmp_path)
    (models / "stage2_material.tflite").unlink()
    (models / "stage2_material.tflite").write_bytes(b"not a model")
    code, report = _run(models, ASSETS)
    assert code == 1
    line = _line(report, "models load")
    assert line.startswith("✗") and "stage2_material.tflite is not a valid .tflite model" in line
    assert _line(report, "samples").startswith("✗")  # skipped, not crashed
    assert "Traceback" not in report


def test_missing_models_folder_and_demo_clip(tmp_path):
    assets = _assets_copy(tmp_path)
    (assets / "demo.mp4").unlink()
    code, report = _run(tmp_path / "nowhere", assets)
    assert code == 1
    line = _line(report, "models load")
    assert line.startswith("✗") and line.endswith(
        f"models folder {tmp_path / 'nowhere'} does not exist; pass --models DIR pointing at "
        "a folder with cascade.json"
    )
    line = _line(report, "samples")
    assert line.startswith("✗") and line.endswith("skipped: the models did not load")
    line = _line(report, "demo clip")
    assert line.startswith("✗") and line.endswith(f"{assets / 'demo.mp4'} is missing")
    assert report.splitlines()[-1].startswith("self-test: 3 checks, 3 FAILED")


def test_marks_fall_back_to_ascii_on_a_terminal_that_cannot_show_them():
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    checks = [selftest.Check("a", True, 0.001, ""), selftest.Check("b", False, 0.002, "why")]
    report = selftest.format_report(checks, 0.01, out)
    assert report.splitlines()[0].startswith("OK a") and report.splitlines()[1].startswith("FAIL b")


def test_cli_self_test_flag_and_required_sub_command(capsys):
    assert main(["--self-test"]) == 0
    assert "all passed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert "required: command" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--self-test", "cameras"])
    assert exc.value.code == 2


# --- where models/ and assets/ are found -------------------------------------------------------


@pytest.fixture
def no_resource_env(monkeypatch):
    monkeypatch.delenv("WASTE_VISION_MODELS", raising=False)
    monkeypatch.delenv("WASTE_VISION_ASSETS", raising=False)


def test_resources_inside_a_bundle(tmp_path, monkeypatch, no_resource_env):
    (tmp_path / "models").mkdir()
    (tmp_path / "assets").mkdir()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resource_roots()[0] == tmp_path
    assert resources.default_models_dir() == tmp_path / "models"
    assert resources.default_assets_dir() == tmp_path / "assets"


def test_resources_outside_a_bundle(monkeypatch, no_resource_env):
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)
    assert resources.default_models_dir() == MODELS
    assert resources.default_assets_dir() == ASSETS


def test_env_var_overrides_the_bundle(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setenv("WASTE_VISION_MODELS", str(tmp_path / "mine"))
    assert resources.default_models_dir() == tmp_path / "mine"
