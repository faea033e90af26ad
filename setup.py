"""Packaging that pyproject.toml cannot say alone: the models and assets go into the wheel.

They stay at the top of the repository (``models/``, ``assets/``); ``build_py`` copies them
into the built package as ``waste_vision/_data/models`` and ``waste_vision/_data/assets``,
where ``waste_vision/resources.py`` finds them after a plain ``pip install .`` or a wheel
install. What goes in:

- ``models/cascade.json`` and the LiteRT model files it names: each stage's ``.tflite``, the
  fused cascade and its int8 version (27 MB). Not the ``.keras`` files (14 MB more, only
  for ``--backend keras``, which needs TensorFlow and a checkout: ``pip install -e
  '.[gpu]'``), so the wheel's ``cascade.json`` is a copy without the ``keras`` entries
  (``manifest.py`` refuses a manifest naming a missing file). Not the per-stage training
  summaries, not ``models/reports/``, nothing else in ``models/``.
- the run-time assets, as in the kiosk bundle (build.spec): ``assets/demo.mp4`` (the window's
  clip where no camera opens, the self-test's clip) and ``assets/samples/`` (the self-test's
  photos). Other files in ``assets/`` (test and benchmark clips) stay in the repository.

An editable install (``pip install -e .``) copies nothing: it runs from the checkout, and
``resources.py`` finds ``models/`` and ``assets/`` beside the package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
DATA_PACKAGE = ("waste_vision", "_data")


def runtime_manifest(models: Path) -> tuple[dict, list[Path]]:
    """cascade.json without its ``keras`` entries, and the LiteRT files it names (the build
    fails, naming them, where one is missing)."""
    manifest = models / "cascade.json"
    raw = json.loads(manifest.read_text(encoding="utf-8"))
    names = []
    for entry in list(raw.get("stages", [])) + [raw.get("fused"), raw.get("fused_int8")]:
        if isinstance(entry, dict):
            entry.pop("keras", None)
            if isinstance(entry.get("tflite"), str):
                names.append(entry["tflite"])
    reference = raw.get("reference")
    if isinstance(reference, dict) and isinstance(reference.get("file"), str):
        names.append(reference["file"])  # a site profile's reference embeddings
    files = [models / n for n in dict.fromkeys(names)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise SystemExit(f"setup.py: {manifest} names missing files: {', '.join(missing)}")
    return raw, files


RUNTIME_ASSETS = ("demo.mp4", "samples")


def asset_files(assets: Path) -> list[Path]:
    """The run-time assets: demo.mp4 and every file under samples/ but hidden ones."""
    files = []
    for name in RUNTIME_ASSETS:
        path = assets / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(assets).parts)
            )
        else:
            raise SystemExit(f"setup.py: {path} is missing; the wheel needs it")
    return files


class BuildPyWithData(build_py):
    """build_py, then the models and assets copied into ``waste_vision/_data/``."""

    def _data_files(self) -> list[tuple[Path, Path]]:
        """(source, path relative to build_lib) for every file copied as is."""
        dest = Path(*DATA_PACKAGE)
        _, models = runtime_manifest(ROOT / "models")
        pairs = [(f, dest / "models" / f.name) for f in models]
        assets = ROOT / "assets"
        pairs += [(f, dest / "assets" / f.relative_to(assets)) for f in asset_files(assets)]
        return pairs

    def run(self):
        editable = getattr(self, "editable_mode", False)
        if not editable:  # build/lib outlives a build: no module deleted since may linger
            shutil.rmtree(Path(self.build_lib, DATA_PACKAGE[0]), ignore_errors=True)
        super().run()
        if editable:
            return  # the checkout's models/ and assets/ are used in place
        target = Path(self.build_lib, *DATA_PACKAGE)
        for src, rel in self._data_files():
            out = Path(self.build_lib) / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out)
        manifest, _ = runtime_manifest(ROOT / "models")
        (target / "models" / "cascade.json").write_text(
            json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
        )

    def get_outputs(self, include_bytecode=True):
        outputs = super().get_outputs(include_bytecode)
        if getattr(self, "editable_mode", False):
            return outputs
        data = [rel for _, rel in self._data_files()]
        data.append(Path(*DATA_PACKAGE, "models", "cascade.json"))
        return outputs + [str(Path(self.build_lib) / rel) for rel in data]


setup(cmdclass={"build_py": BuildPyWithData})
