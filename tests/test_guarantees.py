"""What jaxsr guarantees (README): it never deletes what it did not create, never
reports a number for the wrong image, keeps one writer per workdir, asks before a
resumed run changes its config, and says in one sentence what went wrong.

One test (or more) per defect of the probe in issue 10; each failed before the fix.
"""

import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import recipe_config, subprocess_env, tiny_config
from PIL import Image

from jaxsr import evaluate, files
from jaxsr.data import builtin_photo, write_image
from jaxsr.data.pipeline import eval_examples
from jaxsr.data.sources import make_source, source_config
from jaxsr.errors import UserError
from jaxsr.interpolate import main as interpolate_main
from jaxsr.models import RRDBNet
from jaxsr.saved_model import load_model, save_model
from jaxsr.train.checkpoint import Checkpointer
from jaxsr.train.loop import train_and_evaluate
from jaxsr.train.workdir import HISTORY_FILE, Workdir
from jaxsr.upscale import main as upscale_main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KW = dict(scale=4, num_feat=8, num_block=1, num_grow_ch=4)


def rrdb_variables(seed=0):
    return RRDBNet(**KW).init(jax.random.key(seed), jnp.zeros((1, 8, 8, 3)))


def tree_equal(a, b) -> bool:
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(leaves_a) == len(leaves_b) and all(
        np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(leaves_a, leaves_b, strict=True)
    )


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its bytes."""
    out = {}
    for dirpath, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(dirpath, n)
            with open(p, "rb") as f:
                out[os.path.relpath(p, folder)] = f.read()
    return out


def run_cli(module: str, args: list[str], **kw) -> subprocess.CompletedProcess:
    env = subprocess_env()
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=kw.pop("cwd", ROOT),
        env=env,
        capture_output=True,
        text=True,
        timeout=kw.pop("timeout", 300),
        **kw,
    )


@contextlib.contextmanager
def tmpfs(path, size: str, *, read_only: bool = False):
    """A small tmpfs at ``path`` (root only); skips the test where it cannot be mounted."""
    os.makedirs(path, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)], capture_output=True
    )
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.decode().strip()[:80]})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def truncated_copy(src_png: str, dst: str) -> None:
    with open(src_png, "rb") as f:
        data = f.read()
    with open(dst, "wb") as f:
        f.write(data[: len(data) * 2 // 3])


# 1. --out never deletes what jaxsr did not make ------------------------------------


@pytest.fixture
def rrdb_pth(tmp_path):
    torch = pytest.importorskip("torch")
    from test_rrdbnet import TorchRRDBNet

    torch.manual_seed(0)
    sd = TorchRRDBNet(4, 8, 1, 4).state_dict()
    path = tmp_path / "w.pth"
    torch.save(sd, path)
    return path, sd


def test_convert_refuses_a_folder_that_is_not_a_model_and_keeps_its_files(tmp_path, rrdb_pth):
    from jaxsr.convert.__main__ import main as convert_main

    src, _ = rrdb_pth
    precious = tmp_path / "runs"
    (precious / "checkpoints").mkdir(parents=True)
    (precious / "checkpoints" / "7").write_text("weights")
    (precious / "notes.txt").write_text("keep me")
    before = snapshot(precious)
    assert convert_main([f"--src={src}", f"--out={precious}"]) == 2
    assert convert_main([f"--src={src}", f"--out={precious}", "--overwrite"]) == 2
    assert snapshot(precious) == before
    # --out equal to or containing the input.
    assert convert_main([f"--src={src}", f"--out={src}"]) == 2
    assert convert_main([f"--src={src}", f"--out={tmp_path}"]) == 2
    assert src.exists() and snapshot(precious) == before


@pytest.mark.slow
def test_out_dot_is_refused_and_the_current_folder_kept(tmp_path, rrdb_pth):
    src, _ = rrdb_pth
    here = tmp_path / "here"
    here.mkdir()
    (here / "data.txt").write_text("mine")
    proc = run_cli("jaxsr.convert", [f"--src={src}", "--out=."], cwd=here)
    assert proc.returncode == 2 and "will not replace it" in proc.stderr, proc.stderr
    assert os.listdir(here) == ["data.txt"] and (here / "data.txt").read_text() == "mine"


def test_interpolate_refuses_its_own_input_as_output(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    save_model(str(a), "rrdbnet", KW, rrdb_variables(0))
    save_model(str(b), "rrdbnet", KW, rrdb_variables(1))
    before = snapshot(a)
    args = [f"--a={a}", f"--b={b}", "--alpha=0.5"]
    assert interpolate_main([*args, f"--out={a}", "--overwrite"]) == 2
    assert interpolate_main([*args, f"--out={tmp_path}", "--overwrite"]) == 2
    assert snapshot(a) == before


def test_a_model_dir_is_replaced_only_with_overwrite_and_atomically(tmp_path, monkeypatch):
    out = tmp_path / "m"
    first, second = rrdb_variables(0), rrdb_variables(1)
    save_model(str(out), "rrdbnet", KW, first)
    with pytest.raises(UserError, match="--overwrite"):
        save_model(str(out), "rrdbnet", KW, second)
    assert tree_equal(load_model(str(out))[1], first)
    # A crash while the new model is written leaves the old one whole, and no temp dir.
    real = np.savez

    def crash(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(UserError, match="No space left"):
        save_model(str(out), "rrdbnet", KW, second, overwrite=True)
    monkeypatch.setattr(np, "savez", real)
    assert tree_equal(load_model(str(out))[1], first)
    assert sorted(os.listdir(tmp_path)) == ["m"]
    save_model(str(out), "rrdbnet", KW, second, overwrite=True)
    assert tree_equal(load_model(str(out))[1], second)
    assert sorted(os.listdir(tmp_path)) == ["m"]


# 2. never a number for the wrong image --------------------------------------------


@pytest.fixture
def eval_folder(tmp_path):
    d = tmp_path / "set"
    d.mkdir()
    Image.fromarray(builtin_photo("coffee")[:64, :96]).save(d / "a.png")
    Image.fromarray(builtin_photo("chelsea")[:64, :96]).save(d / "c.png")
    Image.fromarray(builtin_photo("astronaut")[:64, :96]).save(tmp_path / "full.png")
    truncated_copy(tmp_path / "full.png", d / "b.png")
    return d


def test_an_unreadable_eval_image_is_named_and_left_out_of_the_mean(eval_folder, tmp_path):
    out = tmp_path / "r.json"
    assert evaluate.main(["--model=bicubic", f"--data={eval_folder}", f"--out={out}"]) == 0
    result = json.loads(out.read_text())["datasets"]["set"]
    assert [r["image"] for r in result["per_image"]] == ["a.png", "c.png"]
    assert [s["image"] for s in result["skipped"]] == ["b.png"]
    mean = np.mean([r["bicubic"]["psnr"] for r in result["per_image"]])
    assert result["bicubic"]["psnr"] == pytest.approx(mean, abs=1e-12)
    assert evaluate.main(["--model=bicubic", f"--data={eval_folder}", "--strict"]) == 2


def test_training_scan_excludes_truncated_files_up_front(eval_folder):
    source = make_source(source_config("folder", hr_dir=str(eval_folder)), min_hr_size=32)
    assert source.names == ["a.png", "c.png"]
    assert [name for name, _ in source.skipped] == ["b.png"]


def test_a_file_damaged_after_the_scan_is_an_error_not_its_neighbour(eval_folder):
    source = make_source(source_config("folder", hr_dir=str(eval_folder)), min_hr_size=32)
    truncated_copy(eval_folder / "c.png", eval_folder / "c.png")
    np.testing.assert_array_equal(source[0]["gt"], builtin_photo("coffee")[:64, :96])
    with pytest.raises(UserError, match="c.png"):
        source[1]
    examples = eval_examples(source_config("folder", hr_dir=str(eval_folder)), scale=4)
    assert [n for n, _, _ in examples] == ["a.png"]


# 3. one writer per workdir; an unreadable checkpoint is not a "different config" ---


@pytest.mark.slow
def test_a_second_writer_is_refused_and_a_stale_lock_taken_over(tmp_path):
    workdir = str(tmp_path / "w")
    with Workdir(workdir), pytest.raises(UserError, match=r"in use by another jaxsr run \(pid"):
        train_and_evaluate(tiny_config(num_train_steps=2), workdir)
    assert not os.path.exists(os.path.join(workdir, "config.json"))
    # A lock file left by a killed run holds no lock: the next run takes it over.
    with open(os.path.join(workdir, ".lock"), "w") as f:
        f.write("pid 999999 on elsewhere since yesterday\n")
    train_and_evaluate(tiny_config(num_train_steps=2), workdir)
    assert Checkpointer(workdir).latest_step() == 2


def _truncate_arrays(step_dir):
    for dirpath, _, names in os.walk(os.path.join(step_dir, "state")):
        for n in names:
            if os.path.basename(dirpath) == "d":
                with open(os.path.join(dirpath, n), "r+b") as f:
                    f.truncate(10)


def _garble(path):
    with open(path, "w") as f:
        f.write('{"next_ind')


# Each way a checkpoint can be damaged (by a second writer before workdir locking
# existed, a bad disk, a hand-made copy that missed a folder).
DAMAGE = {
    "state arrays truncated": _truncate_arrays,
    "data part missing": lambda d: shutil.rmtree(os.path.join(d, "data")),
    "data position garbled": lambda d: _garble(os.path.join(d, "data", "process_0-of-1.json")),
    "state metadata missing": lambda d: os.remove(os.path.join(d, "state", "_METADATA")),
    "state folder missing": lambda d: shutil.rmtree(os.path.join(d, "state")),
}


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    """A finished 4-step run (checkpoints at 2 and 4) and its final params."""
    config = tiny_config(num_train_steps=4, checkpoint_every=2)
    workdir = str(tmp_path_factory.mktemp("straight") / "w")
    return config, workdir, jax.device_get(train_and_evaluate(config, workdir).params)


@pytest.mark.slow
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(tmp_path, four_steps, damage):
    config, straight, params = four_steps
    workdir = str(tmp_path / "w")
    shutil.copytree(straight, workdir)
    DAMAGE[damage](os.path.join(workdir, "checkpoints", "4"))
    resumed = train_and_evaluate(config, workdir)
    assert tree_equal(params, resumed.params)
    assert os.listdir(os.path.join(workdir, "checkpoints_unreadable")) == ["4"]
    assert Checkpointer(workdir).latest_step() == 4


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_called_a_different_config(tmp_path):
    workdir = str(tmp_path / "w")
    train_and_evaluate(tiny_config(num_train_steps=2), workdir)
    with pytest.raises(
        UserError,
        match=r"different config \(params/g/body_0/rdb1/conv1/kernel: checkpoint \(3, 3, 8, 4\)",
    ):
        train_and_evaluate(
            tiny_config(num_train_steps=2, **{"model.num_feat": 16}),
            workdir,
            allow_config_change=True,
        )
    assert Checkpointer(workdir).latest_step() == 2  # nothing moved aside
    assert read_json(os.path.join(workdir, "config.json"))["model"]["num_feat"] == 8


# 4. a changed config on resume must be asked for, and is recorded ------------------


@pytest.mark.slow
def test_a_changed_config_on_resume_stops_and_an_accepted_one_is_recorded(tmp_path):
    workdir = str(tmp_path / "w")
    train_and_evaluate(tiny_config(num_train_steps=2), workdir)
    saved = (tmp_path / "w" / "config.json").read_text()
    changed = tiny_config(**{"num_train_steps": 4, "optim.lr": 2e-3, "log_every": 1})
    with pytest.raises(UserError, match=r"num_train_steps: 2 -> 4; optim.lr: 0.001 -> 0.002"):
        train_and_evaluate(changed, workdir)
    assert (tmp_path / "w" / "config.json").read_text() == saved
    state = train_and_evaluate(changed, workdir, allow_config_change=True)
    assert int(state.step) == 4
    history = read_json(os.path.join(workdir, HISTORY_FILE))
    assert history["original"] == json.loads(saved)
    (entry,) = history["changes"]
    assert entry["step"] == 2
    assert entry["fields"]["optim.lr"] == {"old": 1e-3, "new": 2e-3}
    assert entry["fields"]["log_every"] == {"old": 2, "new": 1}  # recorded, not asked for
    assert read_json(os.path.join(workdir, "config.json"))["optim"]["lr"] == 2e-3


# 5. convert checks every shape against the detected architecture ------------------


def test_convert_error_gives_expected_and_found_shapes(tmp_path, rrdb_pth, capsys):
    import torch

    from jaxsr.convert.__main__ import main as convert_main

    _, sd = rrdb_pth
    bad = dict(sd)
    bad["body.0.rdb2.conv3.weight"] = torch.zeros(4, 15, 3, 3)
    torch.save(bad, tmp_path / "bad.pth")
    assert convert_main([f"--src={tmp_path / 'bad.pth'}", f"--out={tmp_path / 'm'}"]) == 2
    err = capsys.readouterr().err
    assert "body.0.rdb2.conv3.weight has shape (3, 3, 15, 4), expected (3, 3, 16, 4)" in err
    missing = {k: v for k, v in sd.items() if k != "body.0.rdb3.conv5.bias"}
    torch.save(missing, tmp_path / "missing.pth")
    assert convert_main([f"--src={tmp_path / 'missing.pth'}", f"--out={tmp_path / 'm'}"]) == 2
    assert "body_0/rdb3/conv5/bias is missing" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


# 6. upscale keeps existing outputs and never eats its own ---------------------------


def test_upscale_keeps_existing_outputs_and_skips_its_own(tmp_path):
    model = tmp_path / "model"
    save_model(str(model), "rrdbnet", KW, rrdb_variables())
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(builtin_photo("coffee")[:20, :24]).save(folder / "x.png")
    args = [f"--model={model}", f"--input={folder}", f"--output={folder}", "--tile=0"]
    assert upscale_main(args) == 0
    assert sorted(os.listdir(folder)) == ["x.png", "x_x4.png"]
    (folder / "x_x4.png").write_bytes(b"edited by hand")
    assert upscale_main(args) == 0
    assert sorted(os.listdir(folder)) == ["x.png", "x_x4.png"]  # no x_x4_x4.png
    assert (folder / "x_x4.png").read_bytes() == b"edited by hand"
    assert upscale_main([*args, "--overwrite"]) == 0
    assert Image.open(folder / "x_x4.png").size == (96, 80)


# 7. one sentence, not a traceback; nothing half-written -----------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "override,expect",
    [
        ({"data.batch_size": 0}, "data.batch_size=0 must be at least 1"),
        ({"checkpoint_every": 0}, "checkpoint_every=0 must be at least 1"),
        ({"log_every": -1}, "log_every=-1 must be at least 1"),
        # issue 38, item 10: a ValueError traceback after .lock and checkpoints/ were made
        ({"scale": 8}, r"--config.scale=8: ESRGAN trains ×1, ×2, ×4"),
    ],
)
def test_bad_values_stop_before_anything_is_written(tmp_path, override, expect):
    workdir = tmp_path / "w"
    with pytest.raises(UserError, match=expect):
        train_and_evaluate(tiny_config(**override), str(workdir))
    assert not workdir.exists()


def test_a_workdir_that_is_a_file_or_read_only_is_one_sentence(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        train_and_evaluate(tiny_config(), str(tmp_path / "f"))
    with (
        tmpfs(tmp_path / "ro", "1m", read_only=True) as ro,
        pytest.raises(UserError, match="Read-only file system"),
    ):
        train_and_evaluate(tiny_config(), str(ro / "w"))


def test_eval_json_on_a_full_disk_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "eval.json"
    out.write_text('{"old": true}')

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(json, "dump", full)
    with pytest.raises(UserError, match=f"Could not write {out}: No space left on device"):
        files.write_json_atomic(str(out), {"new": True})
    assert os.listdir(tmp_path) == ["eval.json"] and out.read_text() == '{"old": true}'


@pytest.mark.slow
def test_disk_full_while_checkpointing_is_one_sentence_and_resumes(tmp_path):
    with tmpfs(tmp_path / "disk", "550k") as disk:
        workdir = str(disk / "w")
        args = ["--config=configs/esrgan_psnr.py:tiny", f"--workdir={workdir}"]
        proc = run_cli("jaxsr.main", args)
        err = proc.stdout + proc.stderr
        assert proc.returncode == 2, err[-2000:]
        assert "error: Could not write a checkpoint" in err and "No space left" in err
        assert "Traceback" not in err and len(err.splitlines()) < 40, err[-3000:]
        kept = Checkpointer(workdir).latest_step()
        assert kept == 2
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)
        proc = run_cli("jaxsr.main", args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "Resumed from the checkpoint at step 2" in proc.stderr


@pytest.mark.slow
def test_a_config_refusal_is_one_line_without_teardown_noise(tmp_path):
    workdir = str(tmp_path / "w")
    train_and_evaluate(tiny_config(num_train_steps=2), workdir)
    args = ["--config=configs/esrgan_psnr.py:tiny", f"--workdir={workdir}"]
    proc = run_cli("jaxsr.main", [*args, "--config.model.num_feat=16", "--allow_config_change"])
    assert proc.returncode == 2
    assert "different config" in proc.stderr
    assert "Event loop is closed" not in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.splitlines()) < 15, proc.stderr[-3000:]


# 8. modes follow the umask ----------------------------------------------------------


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        files.write_json_atomic(str(tmp_path / "a.json"), {})
        write_image(str(tmp_path / "a.png"), np.zeros((4, 4, 3), np.uint8))
        save_model(str(tmp_path / "m"), "rrdbnet", KW, rrdb_variables())
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)  # noqa: E731
    assert mode(tmp_path / "a.json") == mode(tmp_path / "a.png") == 0o644
    assert mode(tmp_path / "m") == 0o755 and mode(tmp_path / "m" / "model.json") == 0o644


# 9. an override the data kind does not read is an error; the run says what it reads --


def test_a_folder_set_on_a_builtin_data_block_is_an_error(tmp_path):
    config = recipe_config("dasr", "tiny", **{"data.train.hr_dir": str(tmp_path)})
    with pytest.raises(UserError, match=r"data.train.hr_dir=.* data.train.kind is 'builtin'"):
        train_and_evaluate(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


@pytest.mark.slow
def test_the_run_logs_what_it_trains_and_evaluates_on(tmp_path, caplog):
    caplog.set_level("INFO")
    train_and_evaluate(tiny_config(num_train_steps=1, checkpoint_every=1), str(tmp_path))
    assert "Training on builtin photos: 12 images" in caplog.text
    assert "Evaluating on builtin photos: 1 images" in caplog.text


# 10. SIGTERM exits 75: tests/test_train.py::test_sigterm_saves_a_checkpoint_and_the_rerun_resumes


# 11. the second probe (issue 24) -----------------------------------------------------


@pytest.fixture
def pix2pixhd_model(tmp_path):
    """A random pix2pixHD global generator for 8 classes + the edge channel."""
    from jaxsr.models import GlobalGenerator

    kw = dict(ngf=4, n_downsampling=1, n_blocks=1)
    variables = GlobalGenerator(**kw).init(jax.random.key(0), jnp.zeros((1, 8, 8, 9)))
    save_model(str(tmp_path / "g"), "pix2pixhd_global", kw, variables)
    return str(tmp_path / "g")


def _maps(folder, label_hw, inst_hw, label_value=1):
    os.makedirs(f"{folder}/labels", exist_ok=True)
    os.makedirs(f"{folder}/insts", exist_ok=True)
    Image.fromarray(np.full(label_hw, label_value, np.uint8)).save(
        f"{folder}/labels/a_gtFine_labelIds.png"
    )
    Image.fromarray(np.ones(inst_hw, np.uint16)).save(f"{folder}/insts/a_gtFine_instanceIds.png")


def test_synthesize_refuses_maps_of_different_sizes_like_training(
    tmp_path, pix2pixhd_model, capsys
):
    from jaxsr import synthesize

    _maps(tmp_path, (32, 40), (32, 48))
    out = tmp_path / "out"
    args = [f"--model={pix2pixhd_model}", f"--labels={tmp_path}/labels", "--label_nc=8"]
    args += [f"--instances={tmp_path}/insts", f"--output={out}"]
    assert synthesize.main(args) == 2
    err = capsys.readouterr().err
    assert "a_gtFine_instanceIds.png is 48x32 but its label map" in err and "is 40x32" in err
    assert not out.exists() or not os.listdir(out)
    # Same sizes: a picture. A label id beyond the classes names synthesize's own flag.
    _maps(tmp_path, (32, 40), (32, 40))
    assert synthesize.main(args) == 0 and os.listdir(out) == ["a_gtFine_labelIds.png"]
    _maps(tmp_path, (32, 40), (32, 40), label_value=9)
    assert synthesize.main([*args, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert "label id 9 is not below label_nc=8; set --label_nc to" in err, err
    assert "--config." not in err


def test_synthesize_on_an_empty_labels_folder_is_an_error(tmp_path, pix2pixhd_model, capsys):
    from jaxsr import synthesize

    (tmp_path / "labels").mkdir()
    args = [f"--model={pix2pixhd_model}", f"--labels={tmp_path / 'labels'}", "--label_nc=8"]
    assert synthesize.main([*args, f"--output={tmp_path / 'out'}"]) == 2
    assert "holds no label maps" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content,expect",
    [
        ('{"task": "sr", "mod', "damaged or truncated"),
        ("", "damaged or truncated"),
        ("[1, 2]", "holds a JSON list, not an object"),
    ],
)
def test_a_damaged_config_json_is_one_sentence_in_every_tool(
    tmp_path, trained_workdir, content, expect, capsys
):
    from jaxsr import synthesize

    workdir = tmp_path / "w"
    shutil.copytree(trained_workdir[0], workdir)
    (workdir / "config.json").write_text(content)
    with pytest.raises(UserError, match=f"config.json: the run's config .*{expect}"):
        train_and_evaluate(tiny_config(), str(workdir))
    assert evaluate.main([f"--model={workdir}", "--data=builtin"]) == 2
    assert synthesize.main([f"--model={workdir}", f"--labels={tmp_path}", "--output=o"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and all(expect in e for e in errors), errors
    with pytest.raises(UserError, match=expect):
        load_model(str(workdir))


@pytest.mark.slow
def test_pix2pixhd_on_an_empty_cityscapes_folder_stops_before_anything(tmp_path):
    root = tmp_path / "city"
    for part in ("train_label", "train_inst", "train_img"):
        (root / part).mkdir(parents=True)
    config = recipe_config("pix2pixhd", "tiny", **{"data.train.kind": "folder"})
    config.data.train.root = str(root)
    with pytest.raises(UserError, match=r"train_label holds no images\. A pix2pixHD dataset"):
        train_and_evaluate(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_a_missing_dataset_folder_leaves_no_workdir_behind(tmp_path):
    config = tiny_config(**{"data.train.kind": "folder"})
    config.data.train.hr_dir = str(tmp_path / "nowhere")
    with pytest.raises(UserError, match="Dataset folder not found"):
        train_and_evaluate(config, str(tmp_path / "w"))
    assert not (tmp_path / "w").exists()


def test_prepare_reports_a_link_loop_and_a_fifo_and_goes_on(tmp_path, capsys):
    from jaxsr.data.prepare import main as prepare_main

    src = tmp_path / "src"
    src.mkdir()
    Image.fromarray(builtin_photo("coffee")[:40, :48]).save(src / "a.png")
    os.symlink(src / "loop.png", src / "loop.png")
    os.mkfifo(src / "pipe.png")
    assert prepare_main([f"--src={src}", f"--out={tmp_path / 'rec'}"]) == 0
    err = capsys.readouterr().err
    assert "skipped loop.png" in err and "loops back on itself" in err
    assert "skipped pipe.png" in err and "FIFO" in err
    index = read_json(tmp_path / "rec" / "index.json")
    assert [r["name"] for r in index["records"]] == ["a.png"]


def test_image_readers_name_a_fifo_and_a_link_loop_for_what_they_are(tmp_path):
    from jaxsr.data.images import ImageError, read_image, verify_image

    os.mkfifo(tmp_path / "pipe.png")
    os.symlink(tmp_path / "loop.png", tmp_path / "loop.png")
    for read in (read_image, verify_image):
        with pytest.raises(ImageError, match=r"pipe.png: a FIFO \(named pipe\), not a regular"):
            read(str(tmp_path / "pipe.png"))
        with pytest.raises(ImageError, match="loop.png: a symbolic link that loops back"):
            read(str(tmp_path / "loop.png"))
    upscale_args = [f"--model={tmp_path}", f"--output={tmp_path / 'o'}"]
    assert upscale_main([*upscale_args, f"--input={tmp_path / 'pipe.png'}"]) == 2


def test_an_image_too_large_for_memory_is_named_and_left_out(tmp_path, monkeypatch, capsys):
    from jaxsr.data import pipeline

    d = tmp_path / "set"
    d.mkdir()
    Image.fromarray(builtin_photo("coffee")[:64, :96]).save(d / "a.png")
    Image.fromarray(np.zeros((1200, 1000, 3), np.uint8)).save(d / "big.png")
    # As if this machine had 64 MiB free: the 1.2 Mpx image needs ~146 MiB to score.
    monkeypatch.setattr(pipeline, "available_memory", lambda: 64 << 20)
    out = tmp_path / "r.json"
    assert evaluate.main(["--model=bicubic", f"--data={d}", f"--out={out}"]) == 0
    result = read_json(out)["datasets"]["set"]
    assert [r["image"] for r in result["per_image"]] == ["a.png"]
    (skipped,) = result["skipped"]
    assert skipped["image"] == "big.png"
    assert "1000x1200 needs about 0.1 GiB to score, more than the 0.1 GiB" in skipped["reason"]
    assert evaluate.main(["--model=bicubic", f"--data={d}", "--strict"]) == 2
    assert "big.png: 1000x1200 needs about" in capsys.readouterr().err


@pytest.mark.slow
def test_a_recipe_mismatch_names_the_task_and_model_first(tmp_path, trained_workdir):
    workdir = tmp_path / "w"
    shutil.copytree(trained_workdir[0], workdir)
    with pytest.raises(UserError) as e:
        train_and_evaluate(recipe_config("pix2pixhd", "tiny"), str(workdir))
    shown = str(e.value).split(": ", 1)[1]
    assert shown.startswith("task: 'sr' -> 'pix2pixhd'; model.name: 'rrdbnet' -> "), shown


def test_niqe_of_flat_blocks_prints_no_numpy_warnings():
    import warnings

    from jaxsr.metrics import niqe

    img = builtin_photo("coffee")[:192, :192].copy()
    img[:96, :96] = 128  # a flat block: its AGGD fit has nothing on one side
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = niqe(img)
    assert np.isfinite(value)


@pytest.mark.parametrize("module", ["jaxsr.main", "jaxsr.benchmark", "jaxsr.embedding"])
def test_help_of_the_absl_tools_exits_0(module):
    proc = run_cli(module, ["--help"], timeout=120)
    assert proc.returncode == 0 and "--config" in proc.stdout, proc.stderr[-1000:]
