"""The fused cascade: one shared frozen trunk feeding both stages' tails in one model.

Both stages keep the same first blocks of the backbone frozen, so their trunks are
identical and a frame needs only one trunk pass; the fused ``.tflite`` outputs stage 1's
P(recyclable) and stage 2's material probabilities together.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from waste_vision.training.export import export_tflite

FUSED_FILE = "cascade_fused.tflite"


def _parts(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    trunk = next(l for l in model.layers if l.name == "trunk")
    tail = next(l for l in model.layers if l.name.endswith("_tail"))
    return trunk, tail


def fused_model(stage1_keras: Path, stage2_keras: Path) -> keras.Model | None:
    """Both stages on one trunk, in float32; None when their trunks differ (nothing to share)."""
    s1 = keras.models.load_model(stage1_keras, compile=False)
    s2 = keras.models.load_model(stage2_keras, compile=False)
    (trunk1, tail1), (trunk2, tail2) = _parts(s1), _parts(s2)
    w1, w2 = trunk1.get_weights(), trunk2.get_weights()
    if len(w1) != len(w2) or any(a.shape != b.shape or not np.array_equal(a, b)
                                 for a, b in zip(w1, w2)):
        return None
    inputs = keras.Input(s1.inputs[0].shape[1:], name="image")
    features = trunk1(inputs)
    out1 = keras.layers.Activation("sigmoid", dtype="float32", name="stage1")(tail1(features))
    out2 = keras.layers.Activation("softmax", dtype="float32", name="stage2")(tail2(features))
    # float32 compute for export; the .tflite stores float16 (or int8) weights either way
    return _as_float32(keras.Model(inputs, [out1, out2], name="cascade_fused"))


def export_fused(stage1_keras: Path, stage2_keras: Path, out: Path) -> Path | None:
    """Write the fused ``.tflite``; None when the stages' trunks differ."""
    fused = fused_model(stage1_keras, stage2_keras)
    return None if fused is None else export_tflite(fused, out / FUSED_FILE)


def _as_float32(model: keras.Model) -> keras.Model:
    config = model.get_config()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clone = keras.Model.from_config(_float32_config(config))
    finally:
        keras.config.set_dtype_policy(previous)
    clone.set_weights([w.astype(np.float32) for w in model.get_weights()])
    return clone


def _float32_config(node):
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy":
            return {**node, "config": {**node["config"], "name": "float32"}}
        return {k: _float32_config(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32_config(v) for v in node]
    return node
