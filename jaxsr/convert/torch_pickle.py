"""Read PyTorch ``.pth`` / ``.pt`` files without torch, and without running their code.

``torch.save`` writes a pickle whose tensors point at raw storages, either inside a
zip archive (torch >= 1.6: ``<name>/data.pkl`` + ``<name>/data/<key>``) or, in the
legacy format of 2018-era checkpoints such as the original ESRGAN release, as a
sequence of pickles followed by the raw storages. A pickle can call any importable
function while loading, so this reader only lets through the handful of globals a
state dict needs (OrderedDict, torch's tensor/parameter rebuild functions, the typed
storage classes) and refuses everything else with :class:`UnsafePickleError`.

:func:`load_torch` returns the checkpoint's containers with every tensor replaced by a
numpy array; :func:`flat_state_dict` flattens it to ``{'a.b.weight': array}``.
"""

from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

from jaxsr.errors import UserError

_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class UnsafePickleError(UserError):
    """The file asks to run code a state dict never needs; it is not loaded."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        dtype = _STORAGE_DTYPES[name]
        if dtype == "bfloat16":
            import ml_dtypes

            dtype = ml_dtypes.bfloat16
        self.dtype = np.dtype(dtype)


class _LazyStorage:
    """A storage of a legacy file: its bytes come after the pickle, so tensors wait."""

    def __init__(self, key: str, dtype: np.dtype, view=None):
        self.key, self.dtype, self.view = key, dtype, view


class _PendingTensor:
    def __init__(self, storage: _LazyStorage, offset, size, stride):
        self.storage, self.args = storage, (offset, size, stride)

    def build(self, arrays: dict) -> np.ndarray:
        flat = arrays[self.storage.key]
        if self.storage.view is not None:
            view_offset, view_size = self.storage.view
            flat = flat[view_offset : view_offset + view_size]
        return _rebuild_tensor(flat, *self.args)


def _rebuild_tensor(storage, offset, size, stride, *unused):
    """``torch._utils._rebuild_tensor_v2``: a strided view of a flat storage, copied."""
    if isinstance(storage, _LazyStorage):
        return _PendingTensor(storage, offset, size, stride)
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(st * itemsize for st in stride)
    )
    return np.array(view)


def _rebuild_parameter(data, *unused):
    return data


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(
            f"The checkpoint references {module}.{name}, which a state dict never needs; "
            "refusing to load it (only tensors, OrderedDicts and plain containers are allowed)."
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafePickleError(f"Unexpected persistent id {pid!r} in the checkpoint.")
        storage_type, key = pid[1], pid[2]
        if isinstance(storage_type, str):  # torch >= 2.x may pickle the dtype name
            storage_type = _StorageType(storage_type)
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"Unexpected storage type {storage_type!r}.")
        return self._load_storage(str(key), storage_type.dtype, pid)


def _load_zip(path: str):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("data.pkl")), None)
        if pkl is None:
            raise UserError(f"{path}: a zip file without data.pkl is not a PyTorch checkpoint.")
        root = pkl[: -len("data.pkl")]
        byteorder = "little"
        if f"{root}byteorder" in names:
            byteorder = zf.read(f"{root}byteorder").decode().strip()
        cache = {}

        def load_storage(key, dtype, pid):
            if key not in cache:
                raw = zf.read(f"{root}data/{key}")
                dt = dtype.newbyteorder("<" if byteorder == "little" else ">")
                cache[key] = np.frombuffer(raw, dt).astype(dtype, copy=False)
            return cache[key]

        return _Unpickler(io.BytesIO(zf.read(pkl)), load_storage).load()


def _load_legacy(path: str):
    with open(path, "rb") as f:
        stream = io.BytesIO(f.read())

    def refuse_storage(*unused):
        raise UnsafePickleError("A storage reference outside the checkpoint's main pickle.")

    header = lambda: _Unpickler(stream, refuse_storage).load()  # noqa: E731
    if header() != 0x1950A86A20F9469CFC6C:
        raise UserError(f"{path}: not a PyTorch checkpoint (unknown magic number).")
    header()  # protocol version
    header()  # sys info
    dtypes = {}

    def lazy_storage(key, dtype, pid):
        dtypes[key] = dtype
        view = pid[5] if len(pid) > 5 else None  # (view_key, offset, size) or None
        return _LazyStorage(key, dtype, None if view is None else (view[1], view[2]))

    result = _Unpickler(stream, lazy_storage).load()
    arrays = {}
    for key in header():  # the storage keys, then each storage: int64 count + raw data
        (count,) = struct.unpack("<q", stream.read(8))
        dtype = dtypes.get(str(key), np.dtype(np.float32))
        arrays[str(key)] = np.frombuffer(stream.read(count * dtype.itemsize), dtype)
    return _resolve(result, arrays)


def _resolve(obj, arrays):
    if isinstance(obj, _PendingTensor):
        return obj.build(arrays)
    if isinstance(obj, dict):
        return type(obj)((k, _resolve(v, arrays)) for k, v in obj.items())
    if isinstance(obj, list | tuple):
        return type(obj)(_resolve(v, arrays) for v in obj)
    return obj


def load_torch(path: str):
    """The object ``torch.load(path)`` would return, tensors as numpy arrays; no torch needed."""
    try:
        return _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    except FileNotFoundError as e:
        raise UserError(f"{path}: no such file.") from e
    except UserError:
        raise
    except Exception as e:
        raise UserError(
            f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})."
        ) from e


def flat_state_dict(obj, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of arrays -> ``{'a.b.c': array}`` (non-array leaves dropped)."""
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flat_state_dict(v, f"{prefix}{k}."))
    elif isinstance(obj, np.ndarray):
        out[prefix[:-1]] = obj
    return out
