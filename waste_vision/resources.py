"""Where the shipped models and assets are, from a bundle, an installed wheel or a checkout.

Looked for in this order (the first folder that exists wins):

1. ``WASTE_VISION_MODELS`` / ``WASTE_VISION_ASSETS`` when set (used as given);
2. a frozen PyInstaller bundle: ``sys._MEIPASS/models``, ``sys._MEIPASS/assets``;
3. package data of an installed wheel: ``waste_vision/_data/models``, ``…/_data/assets``
   (``setup.py`` copies them there at build time; found with ``importlib.resources``);
4. a source checkout or editable install: ``models/`` and ``assets/`` beside the package.
"""

from __future__ import annotations

import os
import sys
from importlib import resources as _importlib_resources
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR_NAME = "_data"


def package_data_dir() -> Path | None:
    """``waste_vision/_data`` of an installed wheel, as a real folder; None where absent."""
    try:
        data = _importlib_resources.files("waste_vision") / DATA_DIR_NAME
    except (ModuleNotFoundError, TypeError):
        return None
    # The package is installed as plain files (pip never installs a wheel zipped), so the
    # Traversable is a Path; anything else (a zip import) cannot serve real file paths.
    if isinstance(data, Path) and data.is_dir():
        return data
    return None


def resource_roots() -> list[Path]:
    """Folders that may hold ``models/`` and ``assets/``, most specific first."""
    roots = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.append(Path(bundle))
    data = package_data_dir()
    if data is not None:
        roots.append(data)
    roots.append(PACKAGE_DIR.parent)  # a source checkout or an editable install
    return roots


def find_resource(name: str, env_var: str | None = None) -> Path:
    """The first existing ``<root>/<name>``; ``env_var`` overrides; else the checkout's path
    (which then does not exist, and the command that needs it says so)."""
    if env_var and os.environ.get(env_var):
        return Path(os.environ[env_var])
    for root in resource_roots():
        if (root / name).is_dir():
            return root / name
    return PACKAGE_DIR.parent / name


def default_models_dir() -> Path:
    return find_resource("models", "WASTE_VISION_MODELS")


def default_assets_dir() -> Path:
    return find_resource("assets", "WASTE_VISION_ASSETS")
