"""The wheel is the product: models and assets inside the package, found from any folder;
TensorFlow optional (``--backend keras`` without it is one line; ``auto`` stays on LiteRT).

The end-to-end test builds the wheel from this checkout (``pip wheel --no-deps``, no network),
installs it with ``--target`` into a temporary folder and runs ``--self-test`` there from
another folder. CI also installs the wheel into a fresh venv with only the base dependencies
(``.ci/run``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from waste_vision import resources
from waste_vision.errors import UserError
from waste_vision.model import cascade as cascade_module
from waste_vision.model.cascade import Cascade

# builds the wheel and installs it into a folder: part of the slow run (CI runs it)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"


@pytest.fixture
def no_resource_env(monkeypatch):
    monkeypatch.delenv("WASTE_VISION_MODELS", raising=False)
    monkeypatch.delenv("WASTE_VISION_ASSETS", raising=False)
    monkeypatch.delattr(sys, "_MEIPASS", raising=False)


def _litert_only_models(tmp_path: Path) -> Path:
    """The models folder as a wheel ships it: cascade.json without 'keras', the .tflite files."""
    dst = tmp_path / "models"
    dst.mkdir()
    manifest = json.loads((MODELS / "cascade.json").read_text())
    for stage in manifest["stages"]:
        stage.pop("keras", None)
    (dst / "cascade.json").write_text(json.dumps(manifest))
    for f in [*MODELS.glob("*.tflite"), *MODELS.glob("*.npz")]:
        (dst / f.name).symlink_to(f)
    return dst


# --- where models/ and assets/ are found ---------------------------------------------------------


def test_package_data_comes_before_the_checkout(tmp_path, monkeypatch, no_resource_env):
    for name in ("models", "assets"):
        (tmp_path / "_data" / name).mkdir(parents=True)
    monkeypatch.setattr(resources, "package_data_dir", lambda: tmp_path / "_data")
    assert resources.default_models_dir() == tmp_path / "_data" / "models"
    assert resources.default_assets_dir() == tmp_path / "_data" / "assets"


def test_bundle_comes_before_package_data(tmp_path, monkeypatch, no_resource_env):
    (tmp_path / "bundle" / "models").mkdir(parents=True)
    (tmp_path / "_data" / "models").mkdir(parents=True)
    monkeypatch.setattr(resources, "package_data_dir", lambda: tmp_path / "_data")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "bundle"), raising=False)
    assert resources.default_models_dir() == tmp_path / "bundle" / "models"


def test_a_checkout_has_no_package_data(no_resource_env):
    # in a checkout (editable install) the data is not copied: models/ beside the package
    assert resources.package_data_dir() is None
    assert resources.default_models_dir() == MODELS


# --- TensorFlow optional -------------------------------------------------------------------------


def test_keras_backend_without_tensorflow_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras -> ImportError
    with pytest.raises(UserError) as exc:
        Cascade(MODELS, backend="keras")
    text = str(exc.value)
    assert "\n" not in text
    assert "needs TensorFlow" in text and "pip install tensorflow" in text
    assert "'.[gpu]'" in text and "--backend litert" in text


def test_auto_stays_on_litert_where_no_keras_model_ships(tmp_path, monkeypatch):
    monkeypatch.setattr(cascade_module, "gpu_visible", lambda: True)  # even with a GPU
    assert cascade_module.choose_backend("auto") == "keras"
    assert Cascade(_litert_only_models(tmp_path), backend="auto").backend == "litert"


def test_auto_is_litert_without_a_gpu(monkeypatch):
    monkeypatch.setattr(cascade_module, "gpu_visible", lambda: False)
    assert Cascade(MODELS, backend="auto").backend == "litert"


@pytest.mark.parametrize(
    "missing, command",
    [
        ("keras", ["train", "--stage", "material", "--out", "m"]),
        ("matplotlib", ["evaluate", "--stage", "material"]),  # the train extra brings it
    ],
)
def test_training_without_the_train_extra_is_one_line(tmp_path, missing, command):
    argv = command + ["--data", str(tmp_path)]
    script = (
        f"import sys; sys.modules[{missing!r}] = None\n"  # import it -> ImportError
        f"from waste_vision.commands.cli import main; sys.exit(main({argv!r}))"
    )
    r = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "pip install -e '.[train]'" in r.stderr


def test_base_dependencies_have_no_tensorflow():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    assert "tensorflow" not in base and "keras" not in base
    for needed in (
        "numpy",
        "opencv-python-headless",
        "ai-edge-litert",
        "pyside6-essentials",
        "av>=",
    ):
        assert needed in base
    extras = project["optional-dependencies"]
    for extra in ("gpu", "train", "dev"):
        assert any(d.startswith("tensorflow") for d in extras[extra]), extra


# --- the wheel, built and installed --------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(ROOT),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
        ],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    (found,) = out.glob("waste_vision-*.whl")
    return found


def test_wheel_carries_the_runtime_models_and_assets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "waste_vision/_data/"
    manifest = json.loads(zipfile.ZipFile(wheel).read(data + "models/cascade.json"))
    named = [s["tflite"] for s in manifest["stages"]]
    named += [manifest[k]["tflite"] for k in ("fused", "fused_int8") if k in manifest]
    assert len(named) >= 3
    for name in named:
        assert data + "models/" + name in names
    assert not any("keras" in s for s in manifest["stages"])
    assert not [n for n in names if n.endswith(".keras") or "/reports/" in n]
    # the run-time assets only (as in the kiosk bundle): the demo clip and the sample photos
    assets = {n[len(data + "assets/") :] for n in names if n.startswith(data + "assets/")}
    samples = {
        "samples/" + p.name
        for p in (ROOT / "assets" / "samples").iterdir()
        if p.is_file() and not p.name.startswith(".")
    }
    assert samples and assets == {"demo.mp4"} | samples
    assert sum(i.file_size for i in zipfile.ZipFile(wheel).infolist()) < 80 * 2**20


def test_installed_wheel_passes_its_self_test_from_another_folder(wheel, tmp_path):
    site = tmp_path / "site"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WASTE_VISION_MODELS", "WASTE_VISION_ASSETS")
    }
    env["PYTHONPATH"] = str(site)  # before this venv's editable install of the checkout
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import waste_vision, waste_vision.resources as r; "
            "print(waste_vision.__file__); print(r.default_models_dir()); "
            "print(r.default_assets_dir())",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert where.returncode == 0, where.stderr
    module, models, assets = where.stdout.split("\n")[:3]
    assert Path(module).is_relative_to(site)
    assert Path(models) == site / "waste_vision" / "_data" / "models"
    assert Path(assets) == site / "waste_vision" / "_data" / "assets"
    r = subprocess.run(
        [sys.executable, "-m", "waste_vision", "--self-test"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all passed" in r.stdout and str(site) in r.stdout
    # --backend keras in a wheel install: one line, exit 2 (no .keras model ships)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "waste_vision",
            "classify",
            "--backend",
            "keras",
            str(assets) + "/samples",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "--backend litert" in r.stderr
