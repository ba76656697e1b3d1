"""Torch-free .pth reading, refusing malicious pickles, and importing official weights."""

import io
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from jaxsr.convert.__main__ import main as convert_main
from jaxsr.errors import UserError
from jaxsr.weights.torch_pickle import UnsafePickleError, load_torch

torch = pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def saved_state(tmp_path):
    torch.manual_seed(0)
    sd = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)).state_dict()
    sd["strided"] = torch.arange(24.0).reshape(4, 6)[:, 1:5]  # non-contiguous view
    sd["half"] = torch.randn(2, 3).half()
    sd["long"] = torch.tensor([1, 2, 3])
    torch.save({"params": sd, "iter": 7}, tmp_path / "new.pth")
    torch.save(sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    np.savez(tmp_path / "ref.npz", **{k: v.numpy() for k, v in sd.items()})


def test_reads_zip_and_legacy_files_without_importing_torch(tmp_path):
    saved_state(tmp_path)
    script = f"""
import sys
sys.modules["torch"] = None  # any import of torch now fails
import numpy as np
from jaxsr.weights.torch_pickle import load_torch, flat_state_dict
ref = dict(np.load({str(tmp_path / "ref.npz")!r}))
new = load_torch({str(tmp_path / "new.pth")!r})
assert new["iter"] == 7
for path, sd in (("new", new["params"]), ("legacy", load_torch({str(tmp_path / "legacy.pth")!r}))):
    flat = flat_state_dict(sd)
    assert sorted(flat) == sorted(ref), (path, sorted(flat))
    for k, v in ref.items():
        assert flat[k].dtype == v.dtype and np.array_equal(flat[k], v), (path, k)
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_refuses_a_pickle_that_calls_anything_else(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"weight": _Evil(marker)}, protocol=2)
    bad = tmp_path / "evil.pth"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("archive/data.pkl", payload)
        zf.writestr("archive/version", "3\n")
    with pytest.raises(UnsafePickleError, match=r"posix\.system|os\.system"):
        load_torch(str(bad))
    assert not marker.exists()
    # The same payload in the legacy (non-zip) layout is refused too.
    legacy = tmp_path / "evil_legacy.pth"
    stream = io.BytesIO()
    for obj in (0x1950A86A20F9469CFC6C, 1001, {}):
        pickle.dump(obj, stream, protocol=2)
    stream.write(payload)
    legacy.write_bytes(stream.getvalue())
    with pytest.raises(UnsafePickleError):
        load_torch(str(legacy))
    assert not marker.exists()


def test_not_a_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "x.pth").write_bytes(b"garbage" * 10)
    with pytest.raises(UserError, match="not a"):
        load_torch(str(tmp_path / "x.pth"))
    with pytest.raises(UserError, match="no such file"):
        load_torch(str(tmp_path / "missing.pth"))


@pytest.mark.parametrize(
    "scheme,wrapper",
    [("basicsr", "params_ema"), ("esrgan2019", None), ("esrgan2018", None), ("basicsr", "params")],
)
def test_convert_rrdbnet_then_load_model_matches_torch(tmp_path, scheme, wrapper):
    import jax.numpy as jnp
    from test_rrdbnet import TorchRRDBNet, esrgan_2018_keys, esrgan_2019_keys

    import jaxsr

    torch.manual_seed(1)
    nf, nb, gc = 16, 2, 8
    ref = TorchRRDBNet(4, nf, nb, gc).eval()
    sd = ref.state_dict()
    if scheme == "esrgan2019":
        sd = esrgan_2019_keys(sd)
    elif scheme == "esrgan2018":
        sd = esrgan_2018_keys(sd, nb)
    if wrapper:
        sd = {"module." + k: v for k, v in sd.items()}
        sd = {wrapper: sd, "params" if wrapper != "params" else "other": {}}
    torch.save(sd, tmp_path / "w.pth")
    assert convert_main([f"--src={tmp_path / 'w.pth'}", f"--out={tmp_path / 'model'}"]) == 0
    module, variables = jaxsr.load_model(str(tmp_path / "model"))
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 12, 10)).astype(np.float32)
    with torch.no_grad():
        want = ref(torch.from_numpy(x)).numpy().transpose(0, 2, 3, 1)
    got = module.apply(variables, jnp.asarray(x.transpose(0, 2, 3, 1)))
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5, rtol=0)


def test_unknown_layout_lists_what_was_found(tmp_path, capsys):
    torch.save({"encoder.weight": torch.zeros(2, 3)}, tmp_path / "x.pth")
    assert convert_main([f"--src={tmp_path / 'x.pth'}", f"--out={tmp_path / 'o'}"]) == 2
    err = capsys.readouterr().err
    assert "unrecognised layout with 1 tensors" in err and "encoder.weight (2, 3)" in err


def vgg19_features_torch():
    """torchvision's vgg19().features layout, written out (spec §1.6)."""
    cfg = [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        512,
        "M",
    ]
    layers, cin = [], 3
    for v in cfg:
        if v == "M":
            layers.append(torch.nn.MaxPool2d(2, 2))
        else:
            layers += [torch.nn.Conv2d(cin, v, 3, padding=1), torch.nn.ReLU(inplace=False)]
            cin = v
    return torch.nn.Sequential(*layers)


def test_vgg19_features_match_torch_before_and_after_relu(tmp_path):
    import jax.numpy as jnp

    from jaxsr.models.vgg import LAYER_INDEX, VGG19Features
    from jaxsr.weights.vgg import load_vgg19_params

    torch.manual_seed(0)
    feats = vgg19_features_torch().eval()
    torch.save({f"features.{k}": v for k, v in feats.state_dict().items()}, tmp_path / "vgg.pth")
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "conv5_4", "conv3_4")
    params = load_vgg19_params(str(tmp_path / "vgg.pth"), layers)
    x = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype(np.float32)
    mean = np.array([0.485, 0.456, 0.406], np.float32)
    std = np.array([0.229, 0.224, 0.225], np.float32)
    h = torch.from_numpy(((x - mean) / std).transpose(0, 3, 1, 2))
    want = {}
    with torch.no_grad():
        for idx, layer in enumerate(feats):
            h = layer(h)
            for name in layers:
                if LAYER_INDEX[name] == idx:
                    want[name] = h.numpy().transpose(0, 2, 3, 1)
    got = VGG19Features(layers).apply({"params": params}, jnp.asarray(x))
    for name in layers:
        scale = np.abs(want[name]).max()
        np.testing.assert_allclose(np.asarray(got[name]), want[name], atol=1e-5 * max(scale, 1))
    assert (np.asarray(got["conv5_4"]) < 0).any()  # really before the ReLU


def test_vgg_weights_missing_or_wrong_are_clear_errors(tmp_path):
    from jaxsr.weights.vgg import load_vgg19_params

    with pytest.raises(UserError, match="VGG19 weights not found.*vgg19-dcbb9e9d.pth"):
        load_vgg19_params(str(tmp_path / "nope.pth"))
    torch.save(
        {"features.0.weight": torch.zeros(64, 3, 3, 3), "features.0.bias": torch.zeros(64)},
        tmp_path / "short.pth",
    )
    with pytest.raises(UserError, match="missing"):
        load_vgg19_params(str(tmp_path / "short.pth"), ("conv5_4",))


def _family_nets():
    """One small official PyTorch network per family jaxsr converts (the tests' own
    references), by name."""
    from dasr_torch import BlindSR
    from mirnet_torch import MIRNet
    from pix2pixhd_torch import GlobalGenerator
    from realesrgan_torch import TorchSRVGG, TorchUNetD
    from sftgan_torch import SFTNet
    from test_rrdbnet import TorchRRDBNet

    return {
        "rrdbnet": lambda: TorchRRDBNet(4, 16, 2, 8),
        "dasr": lambda: BlindSR(2, c=16, n_groups=1, n_blocks=1, widths=(8, 8, 16, 16, 32, 32)),
        "mirnet": lambda: MIRNet(8, 1, 1),
        "pix2pixhd": lambda: GlobalGenerator(9, 3, ngf=4, n_down=4, n_blocks=2),
        "sftgan": lambda: SFTNet(nf=8, nb=1),
        "srvgg": lambda: TorchSRVGG(8, 2, 4, "prelu"),
        "unet_d": lambda: TorchUNetD(4),
    }


@pytest.mark.parametrize("family", sorted(_family_nets()))
def test_safetensors_convert_as_pth_for_every_family(family, tmp_path):
    """Issue 36, item 3: the same official state dict as ``.pth`` and ``.safetensors``
    converts to the same model directory, for every family."""
    from safetensors.numpy import save

    import jaxsr
    from jaxsr.convert.official import convert

    torch.manual_seed(0)
    sd = _family_nets()[family]().state_dict()
    torch.save(sd, tmp_path / "w.pth")
    arrays = {k: np.ascontiguousarray(v.numpy()) for k, v in sd.items()}
    (tmp_path / "w.safetensors").write_bytes(save(arrays))
    a = convert(str(tmp_path / "w.pth"), str(tmp_path / "a"))
    b = convert(str(tmp_path / "w.safetensors"), str(tmp_path / "b"))
    assert a == b
    (_, va), (_, vb) = jaxsr.load_model(str(tmp_path / "a")), jaxsr.load_model(str(tmp_path / "b"))
    import jax

    flat_a, flat_b = jax.tree_util.tree_leaves(va), jax.tree_util.tree_leaves(vb)
    assert len(flat_a) == len(flat_b) > 0
    for x, y in zip(flat_a, flat_b, strict=True):
        np.testing.assert_array_equal(x, y)
