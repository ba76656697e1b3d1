"""Speed and memory of a recipe, jaxsr beside the PyTorch reference, in one run.

    python -m jaxsr.benchmark --config=configs/esrgan_psnr.py [--steps=5] \
        [--infer_size=512 --tile=256] [--config.data.batch_size=8 ...]

**Train step.** The jaxsr step (jit, data-parallel over all devices, LR made on device
inside the step; for ``configs/esrgan.py`` G + D + VGG19 in one step) against the
equivalent PyTorch step (BasicSR's layer order: RRDBNet + L1 + Adam, or the ESRGAN G
and D steps with VGG19 ``conv5_4``; LR precomputed, as BasicSR's loader does):
compile time, steps/s, images/s, achieved GFLOP/s against the step's FLOPs (XLA's count
of the jaxsr step, used for both columns so they are comparable), peak memory. The jaxsr
step is compiled twice: cold, into an empty persistent compilation cache, and warm, as
a second run (or a resumed one) would, from that cache.

**DASR** (``configs/dasr.py``): the joint (stage 2) step with the degradations synthesised
inside the jitted step, beside the same step fed by a host-side numpy/scipy degradation
pipeline (the host time per batch is added: a synchronous loader), and the official
PyTorch iteration (degradation on the device as ``SRMDPreprocessing``, MoCo, G, Adam).

**Tiled inference.** The generator on an ``infer_size``² image in ``tile``² tiles
(``jaxsr.ops.tiling``), both frameworks through the same tiler: megapixels of input per
second and the process's peak resident memory (CPU) or the device's peak (GPU/TPU).

**pix2pixHD** (``configs/pix2pixhd.py``): the G + multi-scale D step (LSGAN + feature
matching + VGG19) at ``--p2p_train_size`` (512×256 by default) and G inference at
``--p2p_infer_size`` (1024×512), each in float32 and bfloat16, beside the official
PyTorch iteration / forward (fp32, and bf16 under CPU/CUDA autocast). Peak memory: the
device's peak on accelerators; on a CPU, XLA's size of the compiled program's buffers
for jaxsr and the growth of the process's peak RSS for PyTorch.

**Precision** (``--precision_table``): the jaxsr train step in float32 and bfloat16, each
with and without rematerialisation (``remat``), for any recipe.

**SPSAGAN** (``configs/spsagan.py``): the generator step at LR sides ``--spsa_sizes``,
blockwise and dense attention beside ESRGAN's RRDBNet (``jaxsr.attention_benchmark``).

Nothing is asserted; numbers depend on the machine, which is printed first.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from jaxsr import attention_benchmark  # noqa: E402
from jaxsr.bench import harness, suite  # noqa: E402
from jaxsr.cli_flags import parse_absl_flags  # noqa: E402
from jaxsr.data.degradations import FixedDegradation  # noqa: E402
from jaxsr.errors import UserError  # noqa: E402
from jaxsr.models import build_model  # noqa: E402
from jaxsr.ops.tiling import tiled_apply  # noqa: E402
from jaxsr.tasks import make_task  # noqa: E402
from jaxsr.train import compile_cache, sharding  # noqa: E402
from jaxsr.train.loop import compile_train_step, init_state  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "Recipe config file[:preset].")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per framework (after warm-up).")
_TORCH = flags.DEFINE_bool("torch", True, "Also time the PyTorch reference.")
_INFER = flags.DEFINE_integer("infer_size", 512, "Side of the tiled-inference input; 0 = skip.")
_TILE = flags.DEFINE_integer("tile", 256, "Tile side for tiled inference.")
_P2P_TRAIN = flags.DEFINE_string("p2p_train_size", "512x256", "pix2pixHD train WxH.")
_P2P_INFER = flags.DEFINE_string("p2p_infer_size", "1024x512", "pix2pixHD inference WxH.")
_SPSA_SIZES = flags.DEFINE_string("spsa_sizes", "24,64,128", "SPSAGAN: LR sides to time.")
_PRECISION = flags.DEFINE_bool(
    "precision_table", False, "Only the train step in fp32/bf16 x remat off/on, side by side."
)
_SUITE = flags.DEFINE_enum(
    "suite", None, ["paper", "tiny"], "Time every recipe's train step (see jaxsr.bench.suite)."
)
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "With --suite: list the rows, time nothing.")
_ONLY = flags.DEFINE_string("only", "", "With --suite: only these recipes (comma-separated).")
_BUDGET = flags.DEFINE_float("budget_s", 480.0, "With --suite: start no row after this long.")

machine, _timed, _peak_rss, _device_peak = (
    harness.machine,
    harness.timed,
    harness.peak_rss,
    harness.device_peak,
)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_jaxsr_train(config, steps: int, *, extras: bool = True) -> dict:
    """The jaxsr train step (``jaxsr.bench.harness``); ``extras``: also the warm
    compile, the input pipeline and (DASR) the host-degradation variant."""
    step = harness.TrainStep(config)
    m = step.measure(steps, warm=extras)
    out = {
        "compile_s": m["compile_s"],
        "warm_compile_s": m["warm_compile_s"],
        "step_s": m["step_s"],
        "flops": m["flops"],
        "peak_bytes": m["device_peak_bytes"] or m["program_bytes"],
    }
    if not extras:
        return out
    out["input_images_s"] = bench_input(step.task, config)
    if config.task == "dasr":
        holder = {"state": step.state}
        out["host_pipeline"] = bench_host_degradation(
            config, step.task, step.mesh, step.step, holder, step.host_batch, step.consts, steps
        )
    return out


def bench_input(task, config) -> float | str:
    """Images/s the training input pipeline (decode, crop, flip; grain threads) delivers
    to this process, after its first batch (thread start-up, first reads), over four
    times as many batches as grain prefetches (so the prefetched ones hardly count); or
    why it could not be measured (e.g. the recipe's dataset folder is not here)."""
    batches = 4 * max(8, config.data.threads)
    try:
        it = iter(task.train_data(0, 1))
        next(it)
    except UserError as e:
        return str(e)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    return batches * config.data.batch_size / (time.perf_counter() - t0)


def bench_host_degradation(config, task, mesh, step, holder, host_batch, consts, steps) -> dict:
    """The DASR step fed with LR made on the host (numpy/scipy, one kernel per image)."""

    d = config.degradation
    rng = np.random.default_rng(0)

    def host_degrade():
        lq = []
        for i, pair in enumerate(host_batch["gt"]):
            fixed = FixedDegradation(
                sigma=float(rng.uniform(d.sig_min, d.sig_max)),
                noise=float(rng.uniform(0, d.noise)) if d.noise else 0.0,
                seed=i,
                boundary=d.boundary,
            )
            lq.append(
                np.stack(
                    [fixed.apply(hr, scale=config.scale, index=j) for j, hr in enumerate(pair)]
                )
            )
        return {"gt": host_batch["gt"], "lq": np.stack(lq)}

    host_s = _timed(host_degrade, steps)
    compiled = step.lower(holder["state"], sharding.put_batch(host_degrade(), mesh), consts)
    compiled = compiled.compile()

    def run():
        batch = sharding.put_batch(host_degrade(), mesh)
        holder["state"], metrics = compiled(holder["state"], batch, consts)
        jax.block_until_ready(metrics["loss"])

    return {"step_s": _timed(run, steps), "host_s": host_s}


def bench_torch_train(config, steps: int) -> dict:
    import torch

    from benchmarks.torch_reference import (
        DASRTrainStepTorch,
        MIRNetTorch,
        RRDBNetTorch,
        VGGStyleDiscriminatorTorch,
        vgg19_features_torch,
    )

    torch.manual_seed(0)
    # XLA flushes denormals on CPU; without this PyTorch can be 10x slower on small
    # weights for reasons unrelated to the model.
    torch.set_flush_denormal(True)
    if config.task == "dasr":
        dasr_step = DASRTrainStepTorch(config)
        p = config.data.patch_size
        hr = torch.rand(config.data.batch_size, 2, 3, p, p) * 255
        return _time_torch(lambda: dasr_step(hr), steps)
    if config.model.name == "mirnet":  # official train_denoising.py iteration
        m, o = config.model, config.optim
        net = MIRNetTorch(m.n_feat, m.n_rrg, m.n_mrb)
        opt = torch.optim.Adam(net.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        p = config.data.patch_size
        clean = torch.rand(config.data.batch_size, 3, p, p)

        def mirnet_step():
            noisy = (clean + torch.randn_like(clean) * (25 / 255)).clamp(0, 1)
            opt.zero_grad(set_to_none=True)
            out = net(noisy).clamp(0, 1)
            torch.mean(torch.sqrt((out - clean) ** 2 + 1e-6)).backward()
            opt.step()

        return _time_torch(mirnet_step, steps)
    if config.model.name != "rrdbnet" or config.scale != 4:
        return {"skipped": "the PyTorch reference covers RRDBNet ×4, DASR and MIRNet only"}
    m, o = config.model, config.optim
    net = RRDBNetTorch(m.num_feat, m.num_block, m.num_grow_ch)
    opt = torch.optim.Adam(net.parameters(), lr=o.lr, betas=(o.b1, o.b2))
    n, p = config.data.batch_size, config.data.patch_size
    gt = torch.rand(n, 3, p, p)
    lq = torch.rand(n, 3, p // 4, p // 4)
    bce = torch.nn.BCEWithLogitsLoss()
    if config.task == "esrgan":
        disc = VGGStyleDiscriminatorTorch(config.discriminator.num_feat, p)
        opt_d = torch.optim.Adam(disc.parameters(), lr=config.optim_d.lr, betas=(o.b1, o.b2))
        vgg = vgg19_features_torch().eval()
        for q in vgg.parameters():
            q.requires_grad_(False)
        w = config.losses

    def run():
        opt.zero_grad(set_to_none=True)
        sr = net(lq)
        loss = torch.mean(torch.abs(sr - gt))
        if config.task == "esrgan":  # BasicSR ESRGANModel.optimize_parameters
            for q in disc.parameters():
                q.requires_grad_(False)
            loss = w.l1 * loss + w.perceptual * torch.mean(torch.abs(vgg(sr) - vgg(gt)))
            real = disc(gt).detach()
            fake = disc(sr)
            loss = loss + w.gan * 0.5 * (
                bce(real - fake.mean(), torch.zeros_like(real))
                + bce(fake - real.mean(), torch.ones_like(fake))
            )
        loss.backward()
        opt.step()
        if config.task == "esrgan":
            for q in disc.parameters():
                q.requires_grad_(True)
            opt_d.zero_grad(set_to_none=True)
            fake_d = disc(sr.detach())
            real_d = disc(gt)
            l_real = 0.5 * bce(real_d - fake_d.detach().mean(), torch.ones_like(real_d))
            l_fake = 0.5 * bce(fake_d - real_d.detach().mean(), torch.zeros_like(fake_d))
            (l_real + l_fake).backward()
            opt_d.step()

    return _time_torch(run, steps)


def _time_torch(run, steps: int) -> dict:
    import torch

    t0 = time.perf_counter()
    run()  # first call: allocator and oneDNN primitive creation ("compile" for eager)
    first = time.perf_counter() - t0
    sec = _timed(run, steps)
    return {
        "compile_s": first,
        "step_s": sec,
        "threads": torch.get_num_threads(),
        "version": torch.__version__,
    }


def _inference_image(size: int) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 1, (size, size, 3)).astype(np.float32)


def bench_jaxsr_infer(config, size: int, tile: int) -> dict:
    name, kwargs = make_task(config).model_spec(config)
    model = build_model(name, dtype=jnp.dtype(config.dtype), **kwargs)
    variables = model.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    apply = jax.jit(model.apply)
    img = _inference_image(size)
    t0 = time.perf_counter()
    apply.lower(variables, jnp.zeros((2, tile, tile, 3))).compile()
    compile_s = time.perf_counter() - t0

    def run():
        return tiled_apply(
            lambda t: apply(variables, jnp.asarray(t)),
            img,
            scale=config.scale,
            tile=tile,
            overlap=min(32, tile // 4),
            batch=2,
        )

    run()
    t0 = time.perf_counter()
    run()
    sec = time.perf_counter() - t0
    return {"compile_s": compile_s, "sec": sec, "peak_bytes": _device_peak() or _peak_rss()}


def bench_torch_infer(config, size: int, tile: int) -> dict:
    import torch

    from benchmarks.torch_reference import (
        DASRTorch,
        DegradationEncoderTorch,
        MIRNetTorch,
        RRDBNetTorch,
    )

    torch.set_flush_denormal(True)
    m = config.model
    if config.task == "dasr":
        g = DASRTorch(
            config.scale, m.n_feats, m.n_groups, m.n_blocks, m.reduction, m.encoder_widths[-1]
        )
        enc = DegradationEncoderTorch(tuple(m.encoder_widths)).eval()
        net = lambda x: g(x * 255, enc(x * 255)[0]) / 255  # noqa: E731
    elif config.model.name == "mirnet":
        net = MIRNetTorch(m.n_feat, m.n_rrg, m.n_mrb).eval()
    elif config.model.name == "rrdbnet" and config.scale == 4:
        net = RRDBNetTorch(m.num_feat, m.num_block, m.num_grow_ch).eval()
    else:
        return {"skipped": "the PyTorch reference covers RRDBNet ×4, DASR and MIRNet only"}
    img = _inference_image(size)

    def fn(tiles):
        with torch.no_grad():
            out = net(torch.from_numpy(np.ascontiguousarray(tiles.transpose(0, 3, 1, 2))))
        return out.numpy().transpose(0, 2, 3, 1)

    t0 = time.perf_counter()
    s = config.scale
    tiled_apply(fn, img, scale=s, tile=tile, overlap=min(32, tile // 4), batch=2)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    tiled_apply(fn, img, scale=s, tile=tile, overlap=min(32, tile // 4), batch=2)
    return {"compile_s": first, "sec": time.perf_counter() - t0, "peak_bytes": _peak_rss()}


def _mib(n) -> str:
    return f"{n / 2**20:,.0f}MiB" if n else "n/a"


def _compiled_bytes(compiled) -> int | None:
    mem = compiled.memory_analysis()
    if mem is None:
        return None
    return (
        mem.argument_size_in_bytes
        + mem.output_size_in_bytes
        + mem.temp_size_in_bytes
        - mem.alias_size_in_bytes
    )


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return h, w


def bench_pix2pixhd_jaxsr(config, steps: int, train_hw, infer_hw) -> dict:
    """The train step and G inference of ``config`` at the given sizes."""
    mesh = sharding.make_mesh()
    task = make_task(config)
    batch = sharding.put_batch(task.random_batch(config.data.batch_size, *train_hw), mesh)
    state = init_state(task, config, mesh)
    consts = sharding.put_replicated(task.constants(), mesh)
    t0 = time.perf_counter()
    compiled = compile_train_step(task, mesh).lower(state, batch, consts).compile()
    train = {"compile_s": time.perf_counter() - t0, "peak_bytes": _compiled_bytes(compiled)}
    holder = {"state": state}

    def step():
        holder["state"], metrics = compiled(holder["state"], batch, consts)
        jax.block_until_ready(metrics["loss"])

    train["step_s"] = _timed(step, steps)
    train["peak_bytes"] = _device_peak() or train["peak_bytes"]
    x = task.encode(jax.tree.map(jnp.asarray, task.random_batch(1, *infer_hw)))[0]
    variables = {"params": holder["state"].params["g"]}
    t0 = time.perf_counter()
    infer_c = jax.jit(task.model.apply).lower(variables, x).compile()
    infer = {"compile_s": time.perf_counter() - t0, "peak_bytes": _compiled_bytes(infer_c)}
    infer["step_s"] = _timed(lambda: jax.block_until_ready(infer_c(variables, x)), steps)
    infer["peak_bytes"] = _device_peak() or infer["peak_bytes"]
    return {"train": train, "infer": infer}


def bench_pix2pixhd_torch(config, steps: int, train_hw, infer_hw, bf16: bool) -> dict:
    """The official iteration (pix2pixHD_model.forward + G and D Adam steps) and forward."""
    import torch

    from benchmarks.torch_reference import pix2pixhd_torch, vgg19_relu_slices

    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    m, d = config.model, config.discriminator
    in_nc = config.label_nc + 1
    g = pix2pixhd_torch.GlobalGenerator(in_nc, 3, m.ngf, m.n_downsampling, m.n_blocks)
    disc = pix2pixhd_torch.MultiscaleDiscriminator(in_nc + 3, d.ndf, d.n_layers, d.num_D)
    vgg = vgg19_relu_slices()
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))
    n = config.data.batch_size
    label = torch.nn.functional.one_hot(torch.randint(0, config.label_nc, (n, *train_hw)))
    x = torch.cat([label.permute(0, 3, 1, 2).float(), torch.zeros(n, 1, *train_hw)], 1)
    real = torch.rand(n, 3, *train_hw) * 2 - 1
    device = "cuda" if torch.cuda.is_available() else "cpu"
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=bf16)

    def step():
        with autocast:
            fake = g(x)
            pred_fake_d = disc(torch.cat([x, fake.detach()], 1))
            pred_real = disc(torch.cat([x, real], 1))
            pred_fake = disc(torch.cat([x, fake], 1))
            mse = torch.nn.functional.mse_loss
            loss_d = 0.5 * sum(
                mse(pf[-1], torch.zeros_like(pf[-1])) + mse(pr[-1], torch.ones_like(pr[-1]))
                for pf, pr in zip(pred_fake_d, pred_real, strict=True)
            )
            loss_g = sum(mse(p[-1], torch.ones_like(p[-1])) for p in pred_fake)
            fm_w = 4.0 / (d.n_layers + 1) / d.num_D
            for pf, pr in zip(pred_fake, pred_real, strict=True):
                for j in range(len(pf) - 1):
                    loss_g = loss_g + 10 * fm_w * torch.mean(torch.abs(pf[j] - pr[j].detach()))
            weights = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)
            for w, a, b in zip(weights, vgg(fake), vgg(real), strict=True):
                loss_g = loss_g + 10 * w * torch.mean(torch.abs(a - b.detach()))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    rss0 = _rss()
    out = {"train": _time_torch(step, steps)}
    out["train"]["peak_bytes"] = max(0, _peak_rss() - rss0)
    label = torch.nn.functional.one_hot(torch.randint(0, config.label_nc, (1, *infer_hw)))
    xi = torch.cat([label.permute(0, 3, 1, 2).float(), torch.zeros(1, 1, *infer_hw)], 1)

    def forward():
        with torch.no_grad(), autocast:
            g(xi)

    rss0 = _rss()
    out["infer"] = _time_torch(forward, steps)
    out["infer"]["peak_bytes"] = max(0, _peak_rss() - rss0)
    return out


def main_pix2pixhd(config, steps: int) -> None:
    train_hw, infer_hw = _size(_P2P_TRAIN.value), _size(_P2P_INFER.value)
    rows = []
    for dtype in ("float32", "bfloat16"):
        c = config.copy_and_resolve_references()
        c.dtype = dtype
        # The lr schedule counts epochs of the dataset; a benchmark needs no dataset.
        c.epochs.steps_per_epoch = c.epochs.steps_per_epoch or 1000
        rows.append((f"jaxsr {dtype}", bench_pix2pixhd_jaxsr(c, steps, train_hw, infer_hw)))
    if _TORCH.value:
        try:
            for bf16 in (False, True):
                r = bench_pix2pixhd_torch(config, steps, train_hw, infer_hw, bf16)
                v = r["train"]["version"]
                rows.append((f"PyTorch {v} {'bf16 autocast' if bf16 else 'float32'}", r))
        except ImportError as e:
            print(f"The PyTorch column is skipped ({e}).")
    b = config.data.batch_size
    for part, title in (
        (
            "train",
            f"Train step G + {config.discriminator.num_D}-scale D + VGG, batch {b}, "
            f"{train_hw[1]}x{train_hw[0]}",
        ),
        ("infer", f"G inference, 1 image {infer_hw[1]}x{infer_hw[0]}"),
    ):
        print(f"\n{title} ({steps} timed steps after warm-up)")
        print(f"{'':<34}{'compile s':>10}{'steps/s':>10}{'peak mem':>12}")
        for name, r in rows:
            x = r[part]
            print(
                f"{name:<34}{x['compile_s']:>10.2f}{1 / x['step_s']:>10.3f}"
                f"{_mib(x.get('peak_bytes')):>12}"
            )
    print(
        "(peak mem: device peak on accelerators; on a CPU, XLA's buffer size of the compiled "
        "program for jaxsr, the rise of the process's peak RSS for PyTorch)"
    )


def precision_table(config, steps: int) -> None:
    """The jaxsr train step in float32 and bfloat16, each with and without remat."""
    print(
        f"\nPrecision and memory ({steps} timed steps; peak mem: device peak on "
        "accelerators, XLA's buffer size of the compiled step on a CPU)"
    )
    print(
        f"{'dtype':<10}{'remat':<7}{'compile s':>10}{'steps/s':>10}{'images/s':>10}{'peak mem':>12}"
    )
    b = config.data.batch_size
    for dtype in ("float32", "bfloat16"):
        for remat in (False, True):
            c = config.copy_and_resolve_references()
            c.dtype, c.remat = dtype, remat
            r = bench_jaxsr_train(c, steps, extras=False)
            print(
                f"{dtype:<10}{'on' if remat else 'off':<7}{r['compile_s']:>10.2f}"
                f"{1 / r['step_s']:>10.3f}{b / r['step_s']:>10.2f}{_mib(r['peak_bytes']):>12}"
            )
            sys.stdout.flush()


def main(argv):
    del argv
    if _SUITE.value:
        if _DRY_RUN.value:
            print(suite.dry_run(_SUITE.value, _ONLY.value))
            return
        cache = tempfile.mkdtemp(prefix="jaxsr-benchmark-xla-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        compile_cache.enable(cache)
        suite.run(_SUITE.value, steps=_STEPS.value, only=_ONLY.value, budget_s=_BUDGET.value)
        return
    config = _CONFIG.value
    if config is None:
        raise app.UsageError("Pass --config=configs/<recipe>.py or --suite=paper|tiny.")
    steps = _STEPS.value
    # A fresh, empty cache: the first compile is cold, the second one warm.
    cache = tempfile.mkdtemp(prefix="jaxsr-benchmark-xla-")
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    compile_cache.enable(cache)
    print(f"Machine: {machine()}")
    if config.task == "pix2pixhd":
        m, d = dict(config.model), dict(config.discriminator)
        print(f"Recipe: pix2pixHD, G {m}, D {d}, label_nc {config.label_nc}, remat {config.remat}")
        main_pix2pixhd(config, steps)
        return
    if config.task == "spsagan":
        sides = [int(v) for v in _SPSA_SIZES.value.split(",") if v]
        attention_benchmark.run(config, steps, sides, _timed, _compiled_bytes, _mib)
        return
    print(
        f"Recipe: task {config.task}, model {dict(config.model)}, ×{config.scale}, "
        f"batch {config.data.batch_size}, HR patch {config.data.patch_size}, "
        f"dtype {config.dtype}, remat {config.remat}"
    )
    if _PRECISION.value:
        precision_table(config, steps)
        return
    jx = bench_jaxsr_train(config, steps)
    rows = [("jaxsr (jit)", jx)]
    torch_ok = _TORCH.value
    if torch_ok:
        try:
            tr = bench_torch_train(config, steps)
            rows.append((f"PyTorch {tr.get('version', '')} ({tr.get('threads', '?')} thr)", tr))
        except ImportError as e:
            torch_ok = False
            print(
                f"The PyTorch column is skipped ({e}): it needs torch (pip install -e '.[test]') "
                "and the repository's benchmarks/ folder (run from the repository root)."
            )
    print(
        f"\nTrain step ({steps} timed steps after warm-up; FLOPs/step by XLA = "
        f"{jx['flops'] / 1e9:,.1f} GFLOP; jaxsr compile: cold {jx['compile_s']:.2f} s, "
        f"warm {jx['warm_compile_s']:.2f} s from the persistent compilation cache)"
    )
    print(
        f"{'':<26}{'compile s':>10}{'steps/s':>10}{'images/s':>10}{'GFLOP/s':>10}{'peak mem':>12}"
    )
    if "host_pipeline" in jx:
        h = jx.pop("host_pipeline")
        rows.insert(1, ("jaxsr, LR made on host", {**h, "compile_s": float("nan")}))
        print(
            f"(DASR: the host numpy degradation takes {h['host_s']:.3f} s per batch; "
            "its row includes it)"
        )
    b = config.data.batch_size
    for name, r in rows:
        if "skipped" in r:
            print(f"{name:<26} skipped: {r['skipped']}")
            continue
        gflops = jx["flops"] / r["step_s"] / 1e9 if jx["flops"] else float("nan")
        print(
            f"{name:<26}{r['compile_s']:>10.2f}{1 / r['step_s']:>10.3f}{b / r['step_s']:>10.2f}"
            f"{gflops:>10.1f}{_mib(r.get('peak_bytes')):>12}"
        )
    step_images, host_images = b / jx["step_s"], jx["input_images_s"]
    where = (
        f"Input pipeline ({config.data.train.kind}, {config.data.threads} threads"
        f"{f', {config.data.workers} workers' if config.data.get('workers') else ''})"
    )
    if isinstance(host_images, str):
        print(f"{where}: not measured ({host_images})")
    else:
        verdict = "keeps up with" if host_images >= step_images else "is SLOWER than"
        print(
            f"{where}: {host_images:.1f} images/s, which {verdict} the jaxsr step's "
            f"{step_images:.1f} images/s."
        )
    size, tile = _INFER.value, _TILE.value
    if size:
        rows = [("jaxsr (jit)", bench_jaxsr_infer(config, size, tile))]
        if torch_ok:
            rows.append(("PyTorch (eager)", bench_torch_infer(config, size, tile)))
        print(f"\nTiled inference: {size}x{size} input, ×{config.scale}, tiles {tile}, batch 2")
        print(f"{'':<26}{'compile s':>10}{'seconds':>10}{'MP/s':>10}{'peak mem':>12}")
        for name, r in rows:
            if "skipped" in r:
                print(f"{name:<26} skipped: {r['skipped']}")
                continue
            mp = size * size / 1e6 / r["sec"]
            print(
                f"{name:<26}{r['compile_s']:>10.2f}{r['sec']:>10.2f}{mp:>10.3f}"
                f"{_mib(r['peak_bytes']):>12}"
            )
        print("(peak mem: device peak on accelerators, else the process's peak RSS so far)")
    sys.stdout.flush()


if __name__ == "__main__":
    app.run(main, flags_parser=parse_absl_flags)
