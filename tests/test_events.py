"""TensorBoard event files written without TensorFlow, read back by TensorBoard's own
reader; the training path imports no TensorFlow."""

import subprocess
import sys

import numpy as np
from conftest import ROOT, subprocess_env

from jaxsr.train.events import EventWriter


def test_tensorboard_reads_scalars_images_and_hparams(tmp_path):
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    writer = EventWriter(str(tmp_path))
    writer.write_hparams({"optim.lr": 2e-4, "model.name": "rrdbnet", "remat": True, "steps": 7})
    for step in (1, 2, 3):
        writer.write_scalars(step, {"train/loss": 1.0 / step, "eval/psnr_y": 20.0 + step})
    strip = np.random.default_rng(0).random((1, 12, 30, 3)).astype(np.float32)
    writer.write_images(3, {"eval/bicubic_sr_hr": strip})
    writer.close()

    acc = event_accumulator.EventAccumulator(str(tmp_path), size_guidance={"images": 0})
    acc.Reload()
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3]
    np.testing.assert_allclose([e.value for e in loss], [1.0, 0.5, 1 / 3], rtol=1e-6)
    (image,) = acc.Images("eval/bicubic_sr_hr")
    assert (image.step, image.height, image.width) == (3, 12, 30)
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(image.encoded_image_string)))
    np.testing.assert_array_equal(pixels, (strip[0] * 255 + 0.5).astype(np.uint8))
    content = acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    start = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    assert start.hparams["optim.lr"].number_value == 2e-4
    assert start.hparams["model.name"].string_value == "rrdbnet"
    assert start.hparams["remat"].bool_value is True


def test_the_training_path_imports_no_tensorflow():
    code = (
        "import sys\n"
        "import jaxsr.main, jaxsr.train.loop, jaxsr.tasks.dasr, jaxsr.evaluate, jaxsr.upscale\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('tensorflow', 'keras'))\n"
        "assert not bad, bad[:5]\n"
    )
    env = subprocess_env()
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
