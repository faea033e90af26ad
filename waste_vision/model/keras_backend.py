"""The Keras backend: the only run-time module that imports TensorFlow/Keras (import-linter
holds the line). Used when a GPU is visible or ``--backend keras`` is asked for; a wheel or
bundle without TensorFlow never imports it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from waste_vision.errors import UserError


def load_keras_model(path: Path):
    """A ``.keras`` file as a Keras model, or one ``UserError`` line (no TensorFlow, bad file)."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import keras
    except ImportError:
        raise UserError(
            "--backend keras needs TensorFlow, which is not installed; "
            "install it (pip install tensorflow, or from a checkout the gpu "
            "extra: pip install -e '.[gpu]') or use --backend litert"
        ) from None
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad file
        raise UserError(
            f"{path} is not a valid .keras model "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            "; restore the models folder"
        ) from None


class KerasModel:
    """One ``.keras`` model called directly (not ``predict()``, whose per-call overhead is
    a quarter of a second); outputs as a list, like ``LiteRTModel``."""

    def __init__(self, path: Path):
        self._model = load_keras_model(path)
        self.output_sizes = [int(np.prod(t.shape[1:])) for t in self._model.outputs]

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        out = self._model(x[None], training=False)
        out = out if isinstance(out, (list, tuple)) else [out]
        return [np.asarray(o)[0] for o in out]


def gpu_visible() -> bool:
    """A GPU TensorFlow can use. Importing TensorFlow costs seconds and hundreds of MB, so
    it is only asked when the machine shows an NVIDIA device at all."""
    if not (Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi")):
        return False
    try:
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    except Exception:
        return False
