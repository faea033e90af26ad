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

    def __init__(self, path: Path, embedding: bool = False):
        self._model = load_keras_model(path)
        if embedding:
            self._model = _with_embedding(self._model)
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


def _with_embedding(model):
    """A stage model (image -> trunk -> tail -> activation) that also outputs its tail's pooled
    features, computed once; the model unchanged where it is not built that way."""
    import keras

    try:
        trunk = model.get_layer("trunk")
        tail = next(layer for layer in model.layers if layer.name.endswith("_tail"))
        activation = model.layers[-1]
        pool = next(
            layer for layer in tail.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
        )
    except (ValueError, StopIteration):
        return model
    features = keras.Model(tail.input, pool.output)
    head = keras.Model(pool.output, tail.output)
    inputs = keras.Input(model.inputs[0].shape[1:])
    pooled = features(trunk(inputs))
    return keras.Model(inputs, [activation(head(pooled)), pooled])
