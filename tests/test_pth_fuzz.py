"""The legacy .pth reader against crafted files: every file either loads to arrays read from
inside their storages, or is refused with one clean ``PthFormatError`` line naming the file.

The files are written here in the layout pth.py reads (five pickles, then each storage as an
int64 element count and its bytes), from a small spec that the tests mutate field by field
(sizes, strides, offsets, storage keys, dtypes, declared and stored element counts, the
bytes) and byte by byte.
"""

from __future__ import annotations

import copy
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from waste_vision.errors import UserError
from waste_vision.training.pth import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    PthFormatError,
    load_state_dict,
)

STORAGE_NAMES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.uint8): "ByteStorage",
}

BASE = {
    # key: dtype, element count declared in the object pickle, count in the storage header,
    # the storage's values
    "storages": {
        "100": ["FloatStorage", 24, 24, np.arange(24, dtype=np.float32) * 1.5],
        "101": ["LongStorage", 6, 6, np.arange(6, dtype=np.int64) - 3],
        "102": ["HalfStorage", 10, 10, np.linspace(0, 1, 10).astype(np.float16)],
    },
    "tensors": [  # name, storage key, offset, size, stride
        ["conv.weight", "100", 0, (2, 3, 4), (12, 4, 1)],
        ["every_other", "100", 4, (4,), (2,)],  # a view overlapping conv.weight
        ["transposed", "100", 0, (3, 2), (1, 3)],
        ["counts", "101", 1, (5,), (1,)],
        ["empty", "102", 10, (0,), (1,)],
        ["scalar", "102", 3, (), ()],
    ],
    "keys": ["100", "101", "102"],
}


def _frag(value) -> bytes:
    """The opcodes that push ``value`` (protocol 2, without PROTO and STOP)."""
    data = pickle.dumps(value, protocol=2)
    return data[2:-1]


def write_pth(spec: dict) -> bytes:
    """A legacy-format state dict, as torch.save(..., _use_new_zipfile_serialization=False)."""
    obj = bytearray(b"\x80\x02ccollections\nOrderedDict\n)R")  # an empty OrderedDict
    for name, key, offset, size, stride in spec["tensors"]:
        kind, declared = (
            spec["storages"][key][:2] if key in spec["storages"] else ("FloatStorage", 1)
        )
        obj += _frag(name)
        obj += b"ctorch._utils\n_rebuild_tensor_v2\n("
        obj += b"(" + _frag("storage") + f"ctorch\n{kind}\n".encode() + _frag(key)
        obj += _frag("cpu") + _frag(declared) + b"tQ"  # the persistent id tuple
        obj += _frag(offset) + _frag(size) + _frag(stride)
        obj += b"\x89ccollections\nOrderedDict\n)RtRs"  # requires_grad, hooks; call; set
    obj += b"."
    out = bytearray()
    for part in (
        MAGIC_NUMBER,
        PROTOCOL_VERSION,
        {
            "protocol_version": 1001,
            "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4},
        },
    ):
        out += pickle.dumps(part, protocol=2)
    out += obj + pickle.dumps(list(spec["keys"]), protocol=2)
    for key in spec["keys"]:
        if key in spec["storages"]:
            _kind, _declared, stored, values = spec["storages"][key]
            out += struct.pack("<q", stored) + np.asarray(values).tobytes()
    return bytes(out)


def expected_view(spec: dict, key: str, offset: int, size: tuple, stride: tuple):
    """The tensor by explicit index arithmetic, or None if any element lies outside."""
    values = np.asarray(spec["storages"][key][3])
    index = np.full(size, offset, dtype=object)
    for axis, (n, s) in enumerate(zip(size, stride, strict=False)):
        shape = [1] * len(size)
        shape[axis] = n
        index = index + np.arange(n, dtype=object).reshape(shape) * s
    flat = [int(i) for i in np.ravel(index)]
    if any(i < 0 or i >= values.size for i in flat):
        return None
    return values[flat].reshape(size) if flat else values[:0].reshape(size)


def load_or_refuse(tmp_path, data: bytes):
    path = tmp_path / "crafted.pth"
    path.write_bytes(data)
    try:
        return load_state_dict(path)
    except PthFormatError as exc:
        message = str(exc)
        assert message.startswith(f"{path}: ") and "\n" not in message
        assert isinstance(exc, UserError) and exc.exit_code == 2
        return None


def test_the_writer_makes_files_the_reader_loads(tmp_path):
    sd = load_or_refuse(tmp_path, write_pth(BASE))
    assert sd is not None and list(sd) == [t[0] for t in BASE["tensors"]]
    for name, key, offset, size, stride in BASE["tensors"]:
        want = expected_view(BASE, key, offset, size, stride)
        assert sd[name].shape == size and sd[name].dtype == want.dtype
        np.testing.assert_array_equal(sd[name], want)
    assert sd["every_other"].tolist() == [6.0, 9.0, 12.0, 15.0]


ODD_VALUES = (
    st.integers(-3, 30)
    | st.integers(-(2**70), 2**70)
    | st.booleans()
    | st.none()
    | st.floats(allow_nan=True)
    | st.text(max_size=3)
)
SHAPES = st.lists(
    st.integers(-2, 8) | st.integers(-(2**64), 2**64) | st.booleans(), max_size=20
).map(tuple)


@st.composite
def mutated_specs(draw):
    spec = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 3))):
        tensor = draw(st.sampled_from(spec["tensors"]))
        key = draw(st.sampled_from(sorted(spec["storages"])))
        what = draw(
            st.sampled_from(
                [
                    "offset",
                    "size",
                    "size_item",
                    "stride",
                    "stride_item",
                    "storage_key",
                    "dtype",
                    "declared",
                    "stored",
                    "bytes",
                    "keys",
                ]
            )
        )
        if what == "offset":
            tensor[2] = draw(ODD_VALUES)
        elif what in ("size", "stride"):
            tensor[3 if what == "size" else 4] = draw(SHAPES)
        elif what in ("size_item", "stride_item"):
            at = 3 if what == "size_item" else 4
            items = list(tensor[at])
            if items:
                items[draw(st.integers(0, len(items) - 1))] = draw(ODD_VALUES)
            tensor[at] = tuple(items)
        elif what == "storage_key":
            tensor[1] = draw(st.sampled_from(["100", "101", "102", "999", ""]))
        elif what == "dtype":
            spec["storages"][key][0] = draw(
                st.sampled_from(
                    ["FloatStorage", "LongStorage", "HalfStorage", "ByteStorage", "BoolStorage"]
                )
            )
        elif what == "declared":
            spec["storages"][key][1] = draw(ODD_VALUES)
        elif what == "stored":
            spec["storages"][key][2] = draw(st.integers(-(2**63), 2**63 - 1) | st.integers(-2, 40))
        elif what == "bytes":
            raw = np.asarray(spec["storages"][key][3]).tobytes()
            cut = draw(st.integers(0, len(raw) + 8))
            spec["storages"][key][3] = np.frombuffer((raw + bytes(8))[:cut], np.uint8)
        else:
            spec["keys"] = draw(st.lists(st.sampled_from(["100", "101", "102", "999"]), max_size=5))
    return spec


def _stored_values(spec: dict, key: str) -> np.ndarray:
    """What the reader should see in storage ``key``: its bytes read as its declared dtype."""
    kind, _declared, _stored, values = spec["storages"][key]
    dtype = {v: k for k, v in STORAGE_NAMES.items()}.get(kind, np.dtype(np.bool_))
    raw = np.asarray(values).tobytes()
    return np.frombuffer(raw[: len(raw) // dtype.itemsize * dtype.itemsize], dtype)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutated_specs())
def test_mutated_fields_load_within_bounds_or_are_refused(tmp_path, spec):
    sd = load_or_refuse(tmp_path, write_pth(spec))
    event("loaded" if sd is not None else "refused")
    if sd is None:
        return
    last = {t[0]: t for t in spec["tensors"]}  # a repeated name: the dict keeps the last
    assert set(sd) == set(last)
    for name, array in sd.items():
        _, key, offset, size, stride = last[name]
        checked = {**spec, "storages": {**spec["storages"]}}
        checked["storages"][key] = [*spec["storages"][key][:3], _stored_values(spec, key)]
        want = expected_view(checked, key, offset, tuple(size), tuple(stride))
        assert want is not None, f"{name} was loaded although it reaches outside its storage"
        assert array.shape == tuple(size) and array.tobytes() == want.tobytes()
        assert array.size <= spec["storages"][key][1]  # no more elements than its storage


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.binary(min_size=0, max_size=6)), min_size=1, max_size=4
    ),
    st.integers(0, 10_000),
)
def test_byte_level_mutations_never_crash(tmp_path, patches, cut):
    """Bytes overwritten, inserted or the file cut: loaded within bounds, or refused cleanly."""
    data = bytearray(write_pth(BASE))
    for at, patch in patches:
        at %= len(data) + 1
        if len(patch) % 2:
            data[at : at + len(patch)] = patch
        else:
            data[at:at] = patch
    data = data[: max(cut, len(data) // 2)] if cut < len(data) else data
    sd = load_or_refuse(tmp_path, bytes(data))
    event("loaded" if sd is not None else "refused")
    if sd is not None:
        total = sum(a.nbytes for a in sd.values())
        assert total <= 2 * len(data)  # nothing conjured from outside the file


def _obj_pickle_with(payload: bytes) -> bytes:
    """A file whose object pickle is ``payload`` (the header pickles and key list are valid)."""
    head = b"".join(
        pickle.dumps(p, protocol=2)
        for p in (MAGIC_NUMBER, PROTOCOL_VERSION, {"little_endian": True})
    )
    return head + payload + pickle.dumps([], protocol=2)


def test_a_huge_memo_index_is_refused_before_unpickling(tmp_path):
    """LONG_BINPUT 0xFFFFFFF0 would make CPython's unpickler allocate and clear 64 GB."""
    payload = b"\x80\x02}r\xf0\xff\xff\xff."  # EMPTY_DICT, LONG_BINPUT 4294967280, STOP
    with pytest.raises(PthFormatError, match="memo index 4294967280 is out of range"):
        load_state_dict(_write(tmp_path, _obj_pickle_with(payload)))
    text_put = b"(dp99999999999999\n."  # the same with the text PUT opcode
    with pytest.raises(PthFormatError, match="memo index 99999999999999 is out of range"):
        load_state_dict(_write(tmp_path, _obj_pickle_with(text_put)))


def _write(tmp_path, data: bytes):
    path = tmp_path / "crafted.pth"
    path.write_bytes(data)
    return path


def test_build_cannot_swap_a_checked_tensor_s_fields(tmp_path):
    """BUILD on a rebuilt tensor would otherwise replace its size after _rebuild_tensor."""
    good = write_pth({**BASE, "tensors": [BASE["tensors"][0]]})
    # insert BUILD {'size': (1000000,)} right after the tensor's REDUCE
    build = _frag({"size": (1_000_000,)}) + b"b"
    at = good.index(b"tRs") + 2
    with pytest.raises(PthFormatError, match="unexpected BUILD"):
        load_state_dict(_write(tmp_path, good[:at] + build + good[at:]))


@pytest.mark.parametrize(
    "field, value, message",
    [
        (3, (2, 3, 5), "has 30 elements, more than its storage '100' holds (24)"),
        (4, (12, 4, 2), "reach element 26, past the end of storage '100' (24 elements)"),
        (4, (12, 4, -1), "bad stride"),
        (2, 1, "reach element 24"),
        (2, -1, "bad storage offset -1"),
        (3, (2, 3, 4.0), "bad size"),
        (3, (1,) * 17, "17 dimensions"),
        (1, "999", "storage '999' is not in the file's storage list"),
    ],
)
def test_bad_tensor_fields_name_the_file_and_tensor(tmp_path, field, value, message):
    spec = copy.deepcopy(BASE)
    spec["tensors"][0][field] = value
    path = _write(tmp_path, write_pth(spec))
    with pytest.raises(PthFormatError) as err:
        load_state_dict(path)
    assert str(err.value).startswith(f"{path}: tensor 'conv.weight': ")
    assert message in str(err.value)


def test_storage_counts_must_agree(tmp_path):
    spec = copy.deepcopy(BASE)
    spec["storages"]["101"][2] = 5  # the header says 5 elements, the pickle 6
    with pytest.raises(PthFormatError, match="storage '101' holds 5 elements in the file but 6"):
        load_state_dict(_write(tmp_path, write_pth(spec)))


def test_stride_zero_cannot_blow_up_a_small_storage(tmp_path):
    spec = copy.deepcopy(BASE)
    spec["tensors"][0][3:] = [(10**6, 10**6), (0, 0)]  # 10^12 copies of element 0
    with pytest.raises(PthFormatError, match="more than its storage '100' holds"):
        load_state_dict(_write(tmp_path, write_pth(spec)))
    spec = copy.deepcopy(BASE)  # many names viewing the whole of one storage
    spec["keys"] = ["100"]
    spec["tensors"] = [[f"t{i}", "100", 0, (24,), (1,)] for i in range(2)]
    tied = load_state_dict(_write(tmp_path, write_pth(spec)))  # tied weights: fine
    assert list(tied) == ["t0", "t1"]
    for array in tied.values():
        np.testing.assert_array_equal(array, BASE["storages"]["100"][3])  # the whole storage
    spec["tensors"].append(["t2", "100", 0, (24,), (1,)])
    with pytest.raises(PthFormatError, match="overlapping views"):
        load_state_dict(_write(tmp_path, write_pth(spec)))
