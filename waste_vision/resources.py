"""Where the shipped models and assets are, from a checkout, an install or a frozen bundle."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def resource_roots() -> list[Path]:
    """Folders that may hold ``models/`` and ``assets/``, most specific first."""
    roots = []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        roots.append(Path(bundle))
    roots.append(PACKAGE_DIR.parent)  # a source checkout or an editable install
    roots.append(Path(sys.prefix) / "share" / "waste-vision")
    return roots


def find_resource(name: str, env_var: str | None = None) -> Path:
    """The first existing ``<root>/<name>``; ``env_var`` overrides; else the checkout's path."""
    if env_var and os.environ.get(env_var):
        return Path(os.environ[env_var])
    for root in resource_roots():
        if (root / name).exists():
            return root / name
    return PACKAGE_DIR.parent / name


def default_models_dir() -> Path:
    return find_resource("models", "WASTE_VISION_MODELS")


def default_assets_dir() -> Path:
    return find_resource("assets", "WASTE_VISION_ASSETS")
