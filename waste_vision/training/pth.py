"""Read PyTorch's legacy (non-zip) ``.pth`` state dicts with the standard library and NumPy.

The EfficientNet-Lite0 ImageNet weights ship in that format; reading them ourselves keeps
PyTorch out of the project's dependencies. Layout of the file: five pickles (magic number,
protocol version, system info, the object whose tensors refer to storages by key, the list
of storage keys) followed by each storage as an int64 element count and its raw bytes.

Every one of the five pickles is read with a restricted unpickler: the header pickles and the
key list may hold only plain values (numbers, strings, tuples, lists, dicts), and the object
pickle only the three torch names a state dict needs. A crafted file cannot make the reader
import or call anything else; it gets ``PthFormatError``.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
from pathlib import Path

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class PthFormatError(ValueError):
    """The file is not a legacy PyTorch state dict this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage:
    """A storage's key and dtype; its bytes are filled in after the object pickle."""

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


class _LazyTensor:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def materialize(self) -> np.ndarray:
        flat = self.storage.array
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.size,
            strides=tuple(s * item for s in self.stride),
        )
        return np.array(view, copy=True)


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


class _PlainUnpickler(pickle.Unpickler):
    """Plain values only: any global (class, function) or persistent id is refused."""

    def find_class(self, module, name):
        raise PthFormatError(f"unsupported object in .pth file: {module}.{name}")

    def persistent_load(self, pid):
        raise PthFormatError("unexpected persistent id in a .pth header pickle")


def _plain_load(f):
    return _PlainUnpickler(f).load()


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise PthFormatError(f"unsupported object in .pth file: {module}.{name}")

    def persistent_load(self, pid):
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise PthFormatError(f"unsupported persistent id {kind!r}")
        if key not in self._storages:
            self._storages[key] = _Storage(key, storage_type.dtype, int(numel))
        return self._storages[key]


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return ``{name: ndarray}`` for a legacy-format PyTorch state dict file."""
    raw = Path(path).read_bytes()
    f = io.BytesIO(raw)
    try:
        magic = _plain_load(f)
        if magic != MAGIC_NUMBER:
            raise PthFormatError("not a legacy PyTorch file (bad magic number)")
        if _plain_load(f) != PROTOCOL_VERSION:
            raise PthFormatError("unsupported PyTorch protocol version")
        _plain_load(f)  # system info: endianness and type sizes
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(f, storages).load()
        keys = _plain_load(f)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError) as exc:
        if isinstance(exc, PthFormatError):
            raise
        raise PthFormatError(f"not a readable .pth file ({exc})") from None
    if not isinstance(obj, dict) or not isinstance(keys, (list, tuple)):
        raise PthFormatError("not a state dict (.pth holds no name -> tensor mapping)")
    missing = [k for k in keys if k not in storages]
    if missing:
        raise PthFormatError(f"storage key {missing[0]!r} is listed but never used")
    for key in keys:
        header = f.read(8)
        if len(header) != 8:
            raise PthFormatError("file is truncated")
        (numel,) = struct.unpack("<q", header)
        storage = storages[key]
        if numel < 0:
            raise PthFormatError(f"storage {key!r} has a negative size")
        nbytes = numel * storage.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise PthFormatError("file is truncated")
        storage.array = np.frombuffer(buf, dtype=storage.dtype.newbyteorder("<"))
    return {name: t.materialize() for name, t in obj.items() if isinstance(t, _LazyTensor)}
