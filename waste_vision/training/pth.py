"""Read PyTorch's legacy (non-zip) ``.pth`` state dicts with the standard library and NumPy.

The EfficientNet-Lite0 ImageNet weights ship in that format; reading them ourselves keeps
PyTorch out of the project's dependencies. Layout of the file: five pickles (magic number,
protocol version, system info, the object whose tensors refer to storages by key, the list
of storage keys) followed by each storage as an int64 element count and its raw bytes.

A crafted file must not be able to run code, crash the process or read memory it does not
own, so:

* every one of the five pickles is read with a restricted unpickler: the header pickles and
  the key list may hold only plain values (numbers, strings, tuples, lists, dicts), and the
  object pickle only the three torch names a state dict needs; the objects it builds refuse
  ``BUILD`` (their fields cannot be swapped after they are checked);
* each pickle's opcodes are scanned first, and a memo index over ``MAX_MEMO`` is refused
  (CPython's unpickler sizes its memo table by the largest index: one 5-byte opcode would
  make it allocate and clear 64 GB);
* every tensor's storage, dtype, size, stride and offset is checked against the storage it
  names before it is viewed (integers, no negative sizes or strides, at most ``MAX_NDIM``
  dimensions, every element it reaches inside the storage, no more elements than the
  storage holds), every storage's byte count against its declared element count.

Anything else is ``PthFormatError``: one line naming the file (and the tensor or storage).
It is a ``UserError`` (exit 2), so the command line prints it as one line.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import pickletools
import struct
import warnings
from pathlib import Path

import numpy as np

from waste_vision.errors import UserError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
MAX_NDIM = 16
MAX_MEMO = 1 << 20
"""Largest pickle memo index accepted; the Lite0 weights use about 2,700."""

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


class PthFormatError(UserError, ValueError):
    """The file is not a legacy PyTorch state dict this reader understands."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=2)


class _Sealed:
    """Objects the object pickle builds: ``BUILD`` must not change them after they are made."""

    __slots__ = ()

    def __setstate__(self, state):
        raise PthFormatError("unexpected BUILD of a tensor or storage in the object pickle")


class _StorageType(_Sealed):
    __slots__ = ("dtype", "name")

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _Storage(_Sealed):
    """A storage's key, dtype and element count; its bytes are filled in after the pickles."""

    __slots__ = ("array", "dtype", "key", "numel")

    def __init__(self, key: str, dtype: np.dtype, numel: int):
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


def _is_int(x) -> bool:
    return type(x) is int  # not bool, not float


class _LazyTensor(_Sealed):
    __slots__ = ("offset", "size", "storage", "stride")

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def nbytes(self) -> int:
        return math.prod(self.size) * self.storage.dtype.itemsize

    def check(self) -> None:
        """Raise unless every element the view reaches lies inside the storage's bytes."""
        storage, size, stride = self.storage, self.size, self.stride
        if not isinstance(storage, _Storage):
            raise PthFormatError("its storage is not a storage")
        if storage.array is None:
            raise PthFormatError(f"its storage {storage.key!r} is not in the file's storage list")
        if not _is_int(self.offset) or self.offset < 0:
            raise PthFormatError(f"bad storage offset {self.offset!r}")
        if len(size) > MAX_NDIM:
            raise PthFormatError(f"{len(size)} dimensions (at most {MAX_NDIM})")
        if len(size) != len(stride):
            raise PthFormatError(f"size {size} and stride {stride} differ in length")
        if not all(_is_int(n) and n >= 0 for n in size):
            raise PthFormatError(f"bad size {size}")
        if not all(_is_int(n) and n >= 0 for n in stride):
            raise PthFormatError(f"bad stride {stride} (negative or not integers)")
        numel = math.prod(size)
        if numel > storage.numel:
            raise PthFormatError(
                f"size {size} has {numel} elements, more than its storage "
                f"{storage.key!r} holds ({storage.numel})"
            )
        if numel == 0:
            if self.offset > storage.numel:
                raise PthFormatError(
                    f"offset {self.offset} lies past the end of storage "
                    f"{storage.key!r} ({storage.numel} elements)"
                )
            return
        last = self.offset + sum((n - 1) * st for n, st in zip(size, stride, strict=False))
        if last >= storage.numel:
            raise PthFormatError(
                f"offset {self.offset}, size {size} and stride {stride} reach "
                f"element {last}, past the end of storage {storage.key!r} "
                f"({storage.numel} elements)"
            )

    def materialize(self) -> np.ndarray:
        """A copy of the view; call only after ``check``."""
        flat = self.storage.array
        assert flat is not None
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.size,
            strides=tuple(s * item for s in self.stride),
            writeable=False,
        )
        return np.array(view, copy=True)


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)):
        raise PthFormatError("a tensor's size or stride is not a tuple")
    return _LazyTensor(storage, storage_offset, tuple(size), tuple(stride))


def _check_opcodes(f: io.BytesIO) -> None:
    """Scan the next pickle's opcodes without running them; refuse huge memo indices."""
    start = f.tell()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # STRING escapes, as pickle's
            for op, arg, _pos in pickletools.genops(f):
                if op.name in ("PUT", "BINPUT", "LONG_BINPUT") and not (
                    isinstance(arg, int) and 0 <= arg <= MAX_MEMO
                ):
                    raise PthFormatError(f"pickle memo index {arg} is out of range")
    except PthFormatError:
        raise
    except (ValueError, struct.error, EOFError, OverflowError, MemoryError) as exc:
        raise PthFormatError(_unreadable(exc)) from None
    f.seek(start)


def _unreadable(exc: BaseException) -> str:
    return f"not a readable .pth file ({type(exc).__name__}: {str(exc)[:80]!r})"


class _PlainUnpickler(pickle.Unpickler):
    """Plain values only: any global (class, function) or persistent id is refused."""

    def find_class(self, module, name):
        raise PthFormatError(f"unsupported object in .pth file: {module}.{name}")

    def persistent_load(self, pid):
        raise PthFormatError("unexpected persistent id in a .pth header pickle")


def _plain_load(f):
    _check_opcodes(f)
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
        if not isinstance(pid, tuple) or len(pid) < 5:
            raise PthFormatError(f"unsupported persistent id {pid!r:.60}")
        kind, storage_type, key, _location, numel = pid[:5]
        if kind != "storage":
            raise PthFormatError(f"unsupported persistent id {kind!r:.60}")
        if not isinstance(storage_type, _StorageType):
            raise PthFormatError(f"storage {key!r:.60} has no storage type")
        if not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise PthFormatError(f"storage {key!r:.60} has a bad key or size {numel!r:.60}")
        known = self._storages.get(key)
        if known is None:
            known = self._storages[key] = _Storage(key, storage_type.dtype, numel)
        elif (known.dtype, known.numel) != (storage_type.dtype, numel):
            raise PthFormatError(f"storage {key!r} is declared twice with different types or sizes")
        return known


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Return ``{name: ndarray}`` for a legacy-format PyTorch state dict file."""
    try:
        return _load(Path(path))
    except PthFormatError as exc:
        reason = str(exc) if len(str(exc)) <= 300 else str(exc)[:300] + "..."
        raise PthFormatError(f"{path}: {reason}; not a usable PyTorch state dict") from None


def _load(path: Path) -> dict[str, np.ndarray]:
    raw = path.read_bytes()
    f = io.BytesIO(raw)
    try:
        magic = _plain_load(f)
        if magic != MAGIC_NUMBER:
            raise PthFormatError("not a legacy PyTorch file (bad magic number)")
        if _plain_load(f) != PROTOCOL_VERSION:
            raise PthFormatError("unsupported PyTorch protocol version")
        sys_info = _plain_load(f)  # endianness and type sizes
        if isinstance(sys_info, dict) and sys_info.get("little_endian", True) is not True:
            raise PthFormatError("big-endian files are not supported")
        storages: dict[str, _Storage] = {}
        _check_opcodes(f)
        obj = _Unpickler(f, storages).load()
        keys = _plain_load(f)
    except PthFormatError:
        raise
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        RecursionError,
        MemoryError,
        OverflowError,
    ) as exc:
        raise PthFormatError(_unreadable(exc)) from None
    if not isinstance(obj, dict) or not isinstance(keys, (list, tuple)):
        raise PthFormatError("not a state dict (.pth holds no name -> tensor mapping)")
    if not all(isinstance(k, str) for k in keys) or len(set(keys)) != len(keys):
        raise PthFormatError("the storage key list holds duplicates or non-strings")
    missing = [k for k in keys if k not in storages]
    if missing:
        raise PthFormatError(f"storage key {missing[0]!r:.60} is listed but never used")
    for key in keys:
        header = f.read(8)
        if len(header) != 8:
            raise PthFormatError("file is truncated")
        (numel,) = struct.unpack("<q", header)
        storage = storages[key]
        if numel != storage.numel:
            raise PthFormatError(
                f"storage {key!r} holds {numel} elements in the file but "
                f"{storage.numel} in its declaration"
            )
        nbytes = numel * storage.dtype.itemsize
        buf = f.read(nbytes)
        if len(buf) != nbytes:
            raise PthFormatError("file is truncated")
        storage.array = np.frombuffer(buf, dtype=storage.dtype.newbyteorder("<"))
    tensors = {}
    for name, t in obj.items():
        if not isinstance(t, _LazyTensor):
            continue
        if not isinstance(name, str):
            raise PthFormatError(f"tensor name {name!r:.60} is not a string")
        try:
            t.check()
        except PthFormatError as exc:
            raise PthFormatError(f"tensor {name!r}: {exc}") from None
        tensors[name] = t
    # Several names may view one storage (tied weights); more than twice the file's storage
    # bytes can only be views overlapping on purpose, to make a small file fill the memory.
    stored = sum(s.numel * s.dtype.itemsize for s in storages.values())
    wanted = sum(t.nbytes() for t in tensors.values())
    if wanted > 2 * stored:
        raise PthFormatError(
            f"its tensors would take {wanted} bytes from {stored} bytes of "
            "storage (overlapping views)"
        )
    return {name: t.materialize() for name, t in tensors.items()}
