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
import math
import pickle
import pickletools
import struct
import zipfile

import numpy as np

from jaxsr import files
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
    def __init__(self, storage: _LazyStorage, args):
        self.storage, self.args = storage, args


def _index(value, what: str) -> int:
    """``value`` as a non-negative int, or :class:`UserError` (a pickle may hold anything)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise UserError(f"the tensor's {what} is {value!r}, not a non-negative integer")
    return value


class _TensorBuilder:
    """Builds tensors from storages, checking every view against its storage.

    A pickle states each tensor's offset, size and strides over a flat storage; a
    damaged or crafted file may claim more than the storage holds. Every claim is
    checked before a view is made, so the reader never touches memory outside the
    file's own bytes, and the tensors of one file may not add up to more than
    ``budget`` bytes (4× the file plus 16 MiB: room for tensors sharing a storage,
    not for a small file that asks for gigabytes).
    """

    def __init__(self, file_size: int):
        self.budget = 4 * file_size + (16 << 20)

    def rebuild(self, storage, offset, size, stride, *unused):
        """``torch._utils._rebuild_tensor_v2``: a strided view of a flat storage, copied."""
        if isinstance(storage, _LazyStorage):
            return _PendingTensor(storage, (offset, size, stride))
        return self.build(storage, offset, size, stride)

    def build(self, storage, offset, size, stride) -> np.ndarray:
        if not isinstance(storage, np.ndarray) or storage.ndim != 1:
            raise UserError("a tensor refers to something that is not a storage")
        if not isinstance(size, tuple | list) or not isinstance(stride, tuple | list):
            raise UserError("a tensor's size or stride is not a sequence")
        if len(size) != len(stride):
            raise UserError(f"a tensor has size {tuple(size)} but strides {tuple(stride)}")
        offset = _index(offset, "storage offset")
        size = tuple(_index(n, "size") for n in size)
        stride = tuple(_index(st, "stride") for st in stride)
        count = math.prod(size)
        nbytes = count * storage.dtype.itemsize
        if nbytes > self.budget:
            raise UserError(
                f"a tensor of size {size} needs {nbytes} bytes, more than the file holds"
            )
        self.budget -= nbytes
        if count == 0:
            return np.zeros(size, storage.dtype)
        last = offset + sum((n - 1) * st for n, st in zip(size, stride, strict=True))
        if last >= storage.size:
            raise UserError(
                f"a tensor of size {size}, strides {stride} at offset {offset} reaches element "
                f"{last} of a storage of {storage.size}"
            )
        itemsize = storage.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage[offset:],
            shape=size,
            strides=tuple(st * itemsize for st in stride),
            writeable=False,
        )
        return np.array(view)

    def resolve(self, obj, arrays: dict):
        """Build the pending tensors of a legacy file once its storages are read."""
        if isinstance(obj, _PendingTensor):
            if obj.storage.key not in arrays:
                raise UserError(f"a tensor refers to storage {obj.storage.key!r}, which is absent")
            flat = arrays[obj.storage.key]
            if obj.storage.view is not None:
                view_offset, view_size = (_index(v, "view bound") for v in obj.storage.view)
                if view_offset + view_size > flat.size:
                    raise UserError(f"a storage view reaches past storage {obj.storage.key!r}")
                flat = flat[view_offset : view_offset + view_size]
            return self.build(flat, *obj.args)
        if isinstance(obj, dict):
            return type(obj)((k, self.resolve(v, arrays)) for k, v in obj.items())
        if isinstance(obj, list | tuple):
            return type(obj)(self.resolve(v, arrays) for v in obj)
        return obj


def _rebuild_parameter(data, *unused):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, load_storage, builder: _TensorBuilder):
        super().__init__(file)
        self._load_storage = load_storage
        self._allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): builder.rebuild,
            ("torch._utils", "_rebuild_tensor"): builder.rebuild,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
            ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        }

    def find_class(self, module, name):
        if (module, name) in self._allowed:
            return self._allowed[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickleError(
            f"the checkpoint references {module}.{name}, which a state dict never needs; "
            "refusing to load it (only tensors, OrderedDicts and plain containers are allowed)"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage"):
            raise UserError(f"unexpected persistent id {str(pid)[:40]!r} in the pickle")
        storage_type, key = pid[1], pid[2]
        if isinstance(storage_type, str) and storage_type in _STORAGE_DTYPES:
            storage_type = _StorageType(storage_type)  # torch >= 2.x may pickle the name
        if not isinstance(storage_type, _StorageType):
            raise UnsafePickleError(f"unexpected storage type {str(storage_type)[:40]!r}")
        return self._load_storage(str(key), storage_type.dtype, pid)


def _unpickle(stream: io.BytesIO, load_storage, builder: _TensorBuilder):
    """The next pickle of ``stream``. Its opcodes are walked first (``pickletools`` reads
    lengths without allocating them): a damaged length would otherwise make the
    unpickler reserve gigabytes before finding the data short."""
    start = stream.tell()
    try:
        for _ in pickletools.genops(stream):
            pass
    except ValueError as e:
        raise UserError(f"the pickle is truncated or damaged ({str(e)[:120]})") from e
    stream.seek(start)
    return _Unpickler(stream, load_storage, builder).load()


ZIP_MAGIC = b"PK\x03\x04"


def _load_zip(data: bytes, builder: _TensorBuilder):
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise UserError(f"a truncated or damaged zip archive ({e})") from e
    with zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("data.pkl")), None)
        if pkl is None:
            raise UserError("a zip file without data.pkl is not a PyTorch checkpoint")
        root = pkl[: -len("data.pkl")]

        def read(entry: str) -> bytes:
            # A compressed entry may claim (and inflate to) far more than the archive.
            if zf.getinfo(entry).file_size > builder.budget:
                raise UserError(f"{entry} claims more bytes than the file can hold")
            return zf.read(entry)

        byteorder = "little"
        if f"{root}byteorder" in names:
            byteorder = read(f"{root}byteorder").decode().strip()
        cache = {}

        def load_storage(key, dtype, pid):
            if key not in cache:
                entry = f"{root}data/{key}"
                if entry not in names:
                    raise UserError(f"storage {key!r} is missing from the archive")
                raw = read(entry)
                if len(pid) > 4 and _index(pid[4], "storage size") * dtype.itemsize != len(raw):
                    raise UserError(
                        f"storage {key!r} holds {len(raw)} bytes where the pickle expects "
                        f"{pid[4]} values of {dtype.itemsize} bytes"
                    )
                dt = dtype.newbyteorder("<" if byteorder == "little" else ">")
                cache[key] = np.frombuffer(raw, dt).astype(dtype, copy=False)
            return cache[key]

        return _unpickle(io.BytesIO(read(pkl)), load_storage, builder)


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _load_legacy(data: bytes, builder: _TensorBuilder):
    stream = io.BytesIO(data)

    def refuse_storage(*unused):
        raise UnsafePickleError("a storage reference outside the checkpoint's main pickle")

    header = lambda: _unpickle(stream, refuse_storage, builder)  # noqa: E731
    if header() != _LEGACY_MAGIC:
        raise UserError("not a PyTorch checkpoint (unknown magic number)")
    header()  # protocol version
    header()  # sys info
    dtypes = {}

    def lazy_storage(key, dtype, pid):
        dtypes[key] = dtype
        view = pid[5] if len(pid) > 5 else None  # (view_key, offset, size) or None
        if view is not None and not (isinstance(view, tuple) and len(view) == 3):
            raise UserError(f"storage {key!r} has a malformed view {str(view)[:40]!r}")
        return _LazyStorage(key, dtype, None if view is None else (view[1], view[2]))

    result = _unpickle(stream, lazy_storage, builder)
    keys = header()
    if not isinstance(keys, list | tuple):
        raise UserError("the list of storages is malformed")
    arrays = {}
    for key in keys:  # each storage: int64 count + raw data
        head = stream.read(8)
        if len(head) < 8:
            raise UserError("the file ends before its storages (truncated)")
        (count,) = struct.unpack("<q", head)
        dtype = dtypes.get(str(key), np.dtype(np.float32))
        nbytes = _index(count, "storage size") * dtype.itemsize
        if nbytes > builder.budget:
            raise UserError(f"storage {key!r} claims {nbytes} bytes, more than the file holds")
        raw = stream.read(nbytes)
        if len(raw) < nbytes:
            raise UserError(f"the file ends inside storage {key!r} (truncated)")
        arrays[str(key)] = np.frombuffer(raw, dtype)
    return builder.resolve(result, arrays)


def load_torch(path: str):
    """The object ``torch.load(path)`` would return, tensors as numpy arrays; no torch needed.

    Any file is safe to pass: nothing in it is executed, every tensor is checked to
    lie inside the file's storages, and whatever is wrong with it is one
    :class:`UserError` naming the file."""
    problem = files.file_problem(path)
    if problem:
        raise UserError(f"{path}: {problem}.")
    try:
        data = files.read_bytes(path)
    except OSError as e:
        raise UserError(f"{path}: cannot be read ({e.strerror or e}).") from e
    builder = _TensorBuilder(len(data))
    try:
        if data[:4] == ZIP_MAGIC:
            return _load_zip(data, builder)
        return _load_legacy(data, builder)
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path}: {e}.") from None
    except UserError as e:
        raise UserError(f"{path}: not a readable PyTorch checkpoint: {e}.") from None
    except Exception as e:  # a damaged pickle fails in many ways (RecursionError too)
        reason = f"{type(e).__name__}: {str(e)[:200]}"
        if isinstance(e, EOFError | pickle.UnpicklingError | struct.error):
            reason += "; the file is truncated or damaged"
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({reason}).") from None


def flat_state_dict(obj) -> dict[str, np.ndarray]:
    """Nested dicts of arrays -> ``{'a.b.c': array}`` (non-array leaves dropped); walked
    with a stack, so a pathologically deep file cannot exhaust the recursion limit."""
    out = {}
    stack = [("", obj)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, dict):
            stack.extend((f"{prefix}{k}.", v) for k, v in reversed(node.items()))
        elif isinstance(node, np.ndarray):
            out[prefix[:-1]] = node
    return out
