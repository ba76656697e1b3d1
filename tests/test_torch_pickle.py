"""The torch-free ``.pth`` reader on untrusted files: it never reads outside the file,
never crashes or hangs, and says in one sentence what is wrong (issue 24, items 1, 9,
10, 13), checked by crafted files and by fuzzing a small real checkpoint."""

import io
import os
import pickle
import pickletools
import signal
import struct
import zipfile

import numpy as np
import pytest

from jaxsr.convert.__main__ import main as convert_main
from jaxsr.errors import UserError
from jaxsr.weights.torch_pickle import flat_state_dict, load_torch


class _Global:
    """Pickled as the global ``module.name`` (torch need not be importable to write it)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle only asks that a reduce function be callable
        raise AssertionError("never called")


class _Tensor:
    """Pickled as ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``."""

    def __init__(self, key, offset, size, stride):
        self.storage = ("storage", _Global("torch", "FloatStorage"), key, "cpu")
        self.args = (offset, size, stride)

    def __reduce__(self):
        rebuild = _Global("torch._utils", "_rebuild_tensor_v2")
        return rebuild, (self.storage, *self.args, False, {})


class _Pickler(pickle._Pickler):
    dispatch = pickle._Pickler.dispatch.copy()

    def save_fake_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())

    dispatch[_Global] = save_fake_global

    def persistent_id(self, obj):
        if isinstance(obj, tuple) and obj and obj[0] == "storage":
            return obj
        return None


def write_pth(path, tensors: dict, storages: dict, numel: dict | None = None) -> None:
    """A zip checkpoint as ``torch.save`` lays it out: ``tensors`` name -> ``_Tensor``,
    ``storages`` key -> float32 values; ``numel`` overrides a storage's declared size."""
    buf = io.BytesIO()
    numel = numel or {}

    state = {}
    for name, t in tensors.items():
        n = numel.get(t.storage[2], len(storages[t.storage[2]]))
        t.storage = (*t.storage, n)
        state[name] = t
    _Pickler(buf, protocol=2).dump(state)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", buf.getvalue())
        for key, values in storages.items():
            zf.writestr(f"archive/data/{key}", np.asarray(values, "<f4").tobytes())
        zf.writestr("archive/version", "3\n")


def test_a_tensor_larger_than_its_storage_is_refused(tmp_path):
    good = tmp_path / "good.pth"
    write_pth(good, {"w": _Tensor("0", 1, (2, 2), (2, 1))}, {"0": [0, 1, 2, 3, 4]})
    np.testing.assert_array_equal(load_torch(str(good))["w"], [[1, 2], [3, 4]])
    # The probe's file: conv0.weight claims 8x3x3x3 values over a 4-value storage.
    bad = tmp_path / "over.pth"
    write_pth(bad, {"conv0.weight": _Tensor("0", 0, (8, 3, 3, 3), (27, 9, 3, 1))}, {"0": [1] * 4})
    with pytest.raises(UserError, match=r"over.pth: .*reaches element 215 of a storage of 4"):
        load_torch(str(bad))
    # A stride far past the end (the probe's SIGSEGV), an offset past it, negative values.
    for offset, size, stride in [
        (0, (2, 2), (1 << 40, 1)),
        (9, (1,), (1,)),
        (-1, (1,), (1,)),
        (0, (2, -3), (1, 1)),
        (0, (2,), (1.5,)),
        (0, (2, 2), (1,)),
    ]:
        write_pth(bad, {"w": _Tensor("0", offset, size, stride)}, {"0": [1] * 4})
        with pytest.raises(UserError, match="over.pth: not a readable PyTorch checkpoint"):
            load_torch(str(bad))
    # A small file may not ask for gigabytes (a repeated view with stride 0).
    write_pth(bad, {"w": _Tensor("0", 0, (1 << 20, 1 << 10), (0, 0))}, {"0": [1]})
    with pytest.raises(UserError, match="more than the file holds"):
        load_torch(str(bad))
    # A storage shorter than the pickle says (a truncated entry).
    write_pth(bad, {"w": _Tensor("0", 0, (4,), (1,))}, {"0": [1] * 4}, numel={"0": 6})
    with pytest.raises(UserError, match="holds 16 bytes where the pickle expects 6 values"):
        load_torch(str(bad))


def test_a_truncated_zip_says_so_and_names_the_file(tmp_path):
    good = tmp_path / "good.pth"
    write_pth(good, {"w": _Tensor("0", 0, (4,), (1,))}, {"0": [0, 1, 2, 3]})
    data = good.read_bytes()
    for cut in (len(data) // 3, len(data) - 30, 10):
        bad = tmp_path / "cut.pth"
        bad.write_bytes(data[:cut])
        with pytest.raises(UserError, match=r"cut.pth: .*truncated or damaged zip"):
            load_torch(str(bad))


def test_a_fifo_a_link_loop_and_a_folder_are_named_for_what_they_are(tmp_path):
    fifo = tmp_path / "w.pth"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="FIFO"):
        load_torch(str(fifo))  # and does not block on opening it
    os.symlink(tmp_path / "b.pth", tmp_path / "a.pth")
    os.symlink(tmp_path / "a.pth", tmp_path / "b.pth")
    with pytest.raises(UserError, match="loops back on itself"):
        load_torch(str(tmp_path / "a.pth"))
    os.symlink(tmp_path / "gone.pth", tmp_path / "dangling.pth")
    with pytest.raises(UserError, match="gone.pth', which does not exist"):
        load_torch(str(tmp_path / "dangling.pth"))
    with pytest.raises(UserError, match="no such file"):
        load_torch(str(tmp_path / "missing.pth"))
    with pytest.raises(UserError, match="a folder, not a file"):
        load_torch(str(tmp_path))


def test_nan_or_inf_weights_are_refused_naming_the_tensor(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    from test_rrdbnet import TorchRRDBNet

    sd = TorchRRDBNet(4, 8, 1, 4).state_dict()
    sd["body.0.rdb1.conv2.weight"][0, 0, 0, :2] = float("nan")
    sd["conv_last.bias"][1] = float("inf")
    torch.save(sd, tmp_path / "nan.pth")
    out = tmp_path / "m"
    assert convert_main([f"--src={tmp_path / 'nan.pth'}", f"--out={out}"]) == 2
    err = capsys.readouterr().err
    assert "NaN or infinite values in body.0.rdb1.conv2.weight (2 of 432)" in err, err
    assert "conv_last.bias (1 of 3)" in err and not out.exists()


# Fuzzing --------------------------------------------------------------------------


def _ints_in_pickle(data: bytes) -> list[tuple[int, int]]:
    """``(position, length)`` of every small-int argument in the pickles at the start of
    ``data`` (a legacy file is five pickles followed by raw storages)."""
    out, stream = [], io.BytesIO(data)
    widths = {"BININT1": 1, "BININT2": 2, "BININT": 4}
    for _ in range(5):
        try:
            for op, _, pos in pickletools.genops(stream):
                if op.name in widths:
                    out.append((pos + 1, widths[op.name]))
        except Exception:  # past the pickles
            break
    return out


def _mutate_pickle(pkl: bytes, rng) -> bytes:
    kind = rng.integers(4)
    data = bytearray(pkl)
    if kind == 0:  # change sizes, strides and offsets (the small ints of the pickle)
        ints = _ints_in_pickle(pkl)
        for _ in range(rng.integers(1, 4)):
            pos, n = ints[rng.integers(len(ints))]
            value = int(rng.choice([0, 1, 2, 7, 255, 1 << 15, 1 << 30, -1, -(1 << 20)]))
            if n == 1:
                data[pos] = value & 0xFF
            elif n == 2:
                data[pos : pos + 2] = struct.pack("<H", value & 0xFFFF)
            else:
                data[pos : pos + 4] = struct.pack("<i", max(-(1 << 31), min(value, 1 << 30)))
        return bytes(data)
    if kind == 1:  # truncate the opcode stream
        return bytes(data[: rng.integers(0, len(data))])
    if kind == 2:  # flip bytes
        for _ in range(rng.integers(1, 6)):
            data[rng.integers(len(data))] = rng.integers(256)
        return bytes(data)
    # drop or duplicate a span
    i, j = sorted(rng.integers(0, len(data), 2))
    return bytes(data[:i] + data[j:]) if rng.integers(2) else bytes(data[:j] + data[i:])


def _rezip(src: bytes, mutate_entry, rng) -> bytes:
    """The archive with one entry mutated and valid CRCs (so the reader sees the damage)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(mutate_entry):
                data = _mutate_pickle(data, rng) if mutate_entry == "data.pkl" else data
                if mutate_entry != "data.pkl":
                    data = data[: rng.integers(0, len(data) + 1)]
            zout.writestr(info.filename, data)
    return out.getvalue()


def _numpy_tree(obj, torch):
    if isinstance(obj, dict):
        return {k: _numpy_tree(v, torch) for k, v in obj.items()}
    return obj.numpy() if isinstance(obj, torch.Tensor) else obj


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@pytest.mark.slow
def test_fuzzing_a_real_checkpoint_gives_a_correct_load_or_one_sentence(tmp_path):
    """Thousands of mutations of small real checkpoints (zip and legacy layouts, as
    torch.save writes them): each loads (and then equals what torch itself loads from
    the same bytes) or is one UserError; no crash, hang or other exception."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    sd = net.state_dict()
    sd["strided"] = torch.arange(24.0).reshape(4, 6)[:, 1:5]
    torch.save(sd, tmp_path / "zip.pth")
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    zip_bytes = (tmp_path / "zip.pth").read_bytes()
    legacy_bytes = (tmp_path / "legacy.pth").read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "case.pth"
    outcomes = {"loaded": 0, "refused": 0, "loaded_and_checked": 0}
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for case in range(3000):
            kind = case % 6
            if kind == 0:
                data = _rezip(zip_bytes, "data.pkl", rng)
            elif kind == 1:
                data = _rezip(zip_bytes, "data/0", rng)  # a storage cut short
            elif kind == 2:  # raw bytes of the archive flipped or cut
                data = bytearray(zip_bytes)
                for _ in range(rng.integers(1, 4)):
                    data[rng.integers(len(data))] = rng.integers(256)
                data = bytes(data[: rng.integers(len(data) // 2, len(data) + 1)])
            else:  # the legacy layout: pickles, then raw storages
                data = _mutate_pickle(legacy_bytes, rng)
            path.write_bytes(data)
            signal.setitimer(signal.ITIMER_REAL, 5.0)
            try:
                loaded = flat_state_dict(load_torch(str(path)))
            except UserError as e:
                assert str(path) in str(e) and "\n" not in str(e), (case, str(e))
                outcomes["refused"] += 1
                continue
            except _Hang:
                pytest.fail(f"case {case} (kind {kind}) took more than 5 s")
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            outcomes["loaded"] += 1
            try:
                ref = torch.load(path, weights_only=True)
            except Exception:  # torch is stricter about some containers; ours still sane
                assert all(isinstance(v, np.ndarray) for v in loaded.values())
                continue
            ref = flat_state_dict(_numpy_tree(ref, torch))
            assert sorted(loaded) == sorted(ref), case
            for k, v in ref.items():
                np.testing.assert_array_equal(loaded[k], v, err_msg=f"case {case}: {k}")
            outcomes["loaded_and_checked"] += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    print(f"fuzz outcomes of 3000 cases: {outcomes}")
    assert outcomes["refused"] > 1000 and outcomes["loaded_and_checked"] > 50, outcomes
