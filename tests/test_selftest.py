"""``waste-vision --self-test`` without a bundle, and where resources are found in and out of one."""

from __future__ import annotations

import io
import shutil
import sys
from pathlib import Path

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
    samples = sorted(p.name for p in (ASSETS / "samples").iterdir())
    line = _line(report, "samples")
    assert line.startswith("✓") and f"of {len(samples)} photos right" in line
    assert _line(report, "models load").startswith("✓")
    assert _line(report, "demo clip").startswith("✓")
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
    line = _line(report, "samples")
    assert line.startswith("✗") and "expected metal" in line and "said glass" in line
    assert "1 FAILED" in report.splitlines()[-1]


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
    assert "models folder" in _line(report, "models load") and "does not exist" in report
    line = _line(report, "demo clip")
    assert line.startswith("✗") and "demo.mp4 is missing" in line


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
