"""The fused cascade: one shared frozen trunk feeding both stages' tails in one model.

Both stages keep the same first blocks of the backbone frozen, so a frame needs only one
pass through them; the fused ``.tflite`` outputs stage 1's P(recyclable) and stage 2's
material probabilities together, and a third output, ``embedding``: the material tail's pooled
features (1280 values), which a site profile compares with its taught photos. Of the layers
tried (the trunk pooled, either tail pooled, concatenations) it names a new camera's items best
from a few examples (``benchmarks/teach_curve.py``), and it costs nothing: the tail computes
it on the way to the probabilities. When one stage fine-tunes more blocks than the other
(a shallower split), the shared part is the shallower trunk and the other stage reaches its
own split through the frozen blocks in between ("bridge"), still computed once.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from waste_vision.training.export import export_tflite

FUSED_FILE = "cascade_fused.tflite"


def _parts(model: keras.Model) -> tuple[keras.Model, keras.Model]:
    trunk = next(layer for layer in model.layers if layer.name == "trunk")
    tail = next(layer for layer in model.layers if layer.name.endswith("_tail"))
    return trunk, tail


def _bridge(shallow: keras.Model, deep: keras.Model) -> keras.Model | bool:
    """The frozen layers of ``deep`` after ``shallow`` ends, as a model from ``shallow``'s
    output; True when both trunks are the same; False when their shared layers differ."""
    names = [layer.name for layer in shallow.layers]
    deep_names = [layer.name for layer in deep.layers]
    if deep_names[: len(names)] != names:
        return False
    for name in names:
        a, b = shallow.get_layer(name).get_weights(), deep.get_layer(name).get_weights()
        if len(a) != len(b) or any(
            x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, b, strict=False)
        ):
            return False
    if len(deep_names) == len(names):
        return True
    joint = deep.get_layer(names[-1]).output
    return keras.Model(joint, deep.output, name="bridge")


def fused_model(stage1_keras: Path, stage2_keras: Path) -> keras.Model | None:
    """Both stages on one trunk, in float32; None when their trunks differ (nothing to share)."""
    s1 = keras.models.load_model(stage1_keras, compile=False)
    s2 = keras.models.load_model(stage2_keras, compile=False)
    (trunk1, tail1), (trunk2, tail2) = _parts(s1), _parts(s2)
    if s1.inputs[0].shape != s2.inputs[0].shape:
        return None
    shallow, deep = sorted((trunk1, trunk2), key=lambda t: len(t.layers))
    bridge = _bridge(shallow, deep)
    if bridge is False:
        return None
    inputs = keras.Input(s1.inputs[0].shape[1:], name="image")
    shared = shallow(inputs)
    deeper = shared if bridge is True else bridge(shared)
    f1, f2 = (shared, deeper) if shallow is trunk1 else (deeper, shared)
    features, head = _split_at_pool(tail2)
    embedding = features(f2)
    out1 = keras.layers.Activation("sigmoid", dtype="float32", name="stage1")(tail1(f1))
    out2 = keras.layers.Activation("softmax", dtype="float32", name="stage2")(head(embedding))
    embedding = keras.layers.Activation("linear", dtype="float32", name="embedding")(embedding)
    # float32 compute for export; the .tflite stores float16 (or int8) weights either way
    return _as_float32(keras.Model(inputs, [out1, out2, embedding], name="cascade_fused"))


def _split_at_pool(tail: keras.Model) -> tuple[keras.Model, keras.Model]:
    """A tail as (its layers up to the global average pool, the rest): the same computation
    in two parts, so the pooled features can be an output without running the tail twice."""
    pool = next(
        layer for layer in tail.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    )
    return (
        keras.Model(tail.input, pool.output, name=f"{tail.name}_features"),
        keras.Model(pool.output, tail.output, name=f"{tail.name}_head"),
    )


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
