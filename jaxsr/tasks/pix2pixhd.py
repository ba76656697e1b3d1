"""pix2pixHD: label map -> photo with G (global or local), a multi-scale D and optional E.

Wang et al., CVPR 2018, trained as the official ``pix2pixHD_model.py`` / ``train.py``
do (spec §4.3–4.5). One jitted step per iteration:

* inputs on device: one-hot labels (``label_nc``; 0 = the label file is an RGB image,
  mapped to [-1, 1]), the instance edge map (unless ``no_instance``), and with
  ``instance_feat`` the encoder's instance-averaged features of the real photo (E is
  trained jointly, in G's optimizer);
* G step: ``L_G = Σ_s LSGAN(D_s(x, G(x)), 1) + λ_feat·FM + λ_vgg·VGG`` with FM over all
  but the last layer of every scale and VGG19 ``relu1_1 … relu5_1`` weighted 1/32 … 1;
* D step on the same G(x), detached: ``0.5·(Σ_s LSGAN(D_s(x, G(x)), 0) + Σ_s LSGAN(D_s(x, y), 1))``.

Real and fake go through D as one batch: InstanceNorm normalises each image on its
own, so this equals two calls. Adam (2e-4, β 0.5/0.999) with the official epoch
schedule (``niter`` constant, ``niter_decay`` linear to 0). Coarse to fine: the local
generator starts from a global run (``init_from``, a partial load) and, for the first
``niter_fix_global`` epochs, trains only its outermost enhancer (with E), with an Adam
state of its own; the next phase trains all of G with a fresh one, as the official
``update_fixed_params``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxsr.data.label_maps import (
    RESIZE_OR_CROP,
    check_label_source_config,
    make_label_source,
    target_size,
    transform,
)
from jaxsr.data.pipeline import batched_iterator, check_process_split
from jaxsr.errors import UserError
from jaxsr.eval.synthesis import SynthesisEvaluator, class_mean_colors
from jaxsr.losses.feature_matching import feature_matching_loss, multiscale_gan_loss
from jaxsr.losses.perceptual import perceptual_loss
from jaxsr.models import build_model
from jaxsr.models.pix2pixhd import Encoder, MultiscaleDiscriminator
from jaxsr.models.vgg import VGG19Features
from jaxsr.ops.labels import encode_labels, input_channels
from jaxsr.tasks.base import Task
from jaxsr.tasks.signature import GraphInput, GraphSignature
from jaxsr.train.optim import epoch_linear_decay, make_adam
from jaxsr.train.state import TrainState, partial_load, state_field
from jaxsr.train.update import commit, gradient_step
from jaxsr.weights.vgg import loss_vgg19_params

# VGG19 layers and weights of pix2pixHD's VGGLoss.
VGG_WEIGHTS = {
    "relu1_1": 1 / 32,
    "relu2_1": 1 / 16,
    "relu3_1": 1 / 8,
    "relu4_1": 1 / 4,
    "relu5_1": 1.0,
}


def pix2pixhd_vgg_distance(features, fake, real):
    """``Σ_i w_i · mean|VGG_i(fake) − VGG_i(real)|`` on [-1, 1] images. The official loss
    feeds [-1, 1] without ImageNet normalisation; kept so that its weights and numbers
    carry over (``features`` is built with ``normalize=False``)."""
    return perceptual_loss(features, fake, real, VGG_WEIGHTS, "l1")


class Pix2PixHD(Task):
    """Label-to-photo synthesis (``task = 'pix2pixhd'``). Losses (``config.losses``):
    ``gan`` (LSGAN, 1), ``feat`` (feature matching, λ_feat 10; leave it out for the
    official ``--no_ganFeat_loss``), ``vgg`` (10; leave it out for ``--no_vgg_loss``),
    and ``l1`` (pix2pix's L1 to the photo, on [-1, 1]; not part of pix2pixHD)."""

    image_to_image = False  # predict takes the label and instance maps

    losses = ("gan", "feat", "vgg", "l1")

    def __init__(self, config):
        super().__init__(config)
        dtype = jnp.dtype(config.dtype)
        name, kwargs = self.model_spec(config)
        self.model = build_model(name, dtype=dtype, remat=config.remat, **kwargs)
        self.n_local = kwargs.get("n_local_enhancers", 0)
        depth = kwargs.get("n_downsampling", kwargs.get("n_downsample_global", 0))
        self.base = 2 ** (depth + self.n_local)  # sizes must be multiples of this
        d = config.discriminator
        self.disc = MultiscaleDiscriminator(
            num_D=d.num_D, ndf=d.ndf, n_layers=d.n_layers, dtype=dtype, remat=config.remat
        )
        e = config.encoder
        self.encoder = (
            Encoder(
                output_nc=e.feat_num,
                ngf=e.nef,
                n_downsampling=e.n_downsampling,
                max_instances=config.max_instances,
                dtype=dtype,
                remat=config.remat,
            )
            if config.instance_feat
            else None
        )
        if self.encoder is not None:  # E has its own stride; sizes must suit both
            self.base = max(self.base, 2**e.n_downsampling)
        self.vgg = VGG19Features(tuple(VGG_WEIGHTS), normalize=False, dtype=dtype)
        self.weights = {k: float(v) for k, v in config.losses.items() if v}
        self.adam = make_adam(config.optim)
        self.label_nc = int(config.label_nc)
        self.use_instance = not config.no_instance

    # -- config ---------------------------------------------------------------------
    @classmethod
    def model_spec(cls, config) -> tuple[str, dict]:
        kwargs = dict(config.model)
        return kwargs.pop("name"), kwargs

    @classmethod
    def check_config(cls, config) -> None:
        data = config.data
        for split in ("train", "eval"):
            check_label_source_config(data[split], f"data.{split}")
        if data.resize_or_crop not in RESIZE_OR_CROP:
            raise UserError(
                f"--config.data.resize_or_crop={data.resize_or_crop!r}; choose one of "
                f"{list(RESIZE_OR_CROP)}."
            )
        if config.label_nc < 0:
            raise UserError(f"--config.label_nc={config.label_nc} must be 0 (RGB labels) or more.")
        if config.instance_feat and config.no_instance:
            raise UserError("instance_feat needs instance maps; unset no_instance.")
        if config.model.name not in ("pix2pixhd_global", "pix2pixhd_local"):
            raise UserError(
                f"--config.model.name={config.model.name!r}; pix2pixHD's generator is "
                "'pix2pixhd_global' or 'pix2pixhd_local'."
            )

    def input_channels(self) -> int:
        feat = self.config.encoder.feat_num if self.encoder is not None else 0
        return input_channels(self.label_nc, self.use_instance, feat)

    # -- data -----------------------------------------------------------------------
    @functools.cached_property
    def train_source(self):
        return make_label_source(
            self.config.data.train, label_nc=self.label_nc, instances=self.use_instance
        )

    @functools.cached_property
    def steps_per_epoch(self) -> int:
        fixed = self.config.epochs.steps_per_epoch
        return fixed or max(1, len(self.train_source) // self.config.data.batch_size)

    def num_train_steps(self) -> int:
        ep = self.config.epochs
        return (ep.niter + ep.niter_decay) * self.steps_per_epoch

    def schedule(self, step):
        ep = self.config.epochs
        return epoch_linear_decay(
            self.config.optim.lr, ep.niter, ep.niter_decay, self.steps_per_epoch
        )(step)

    def transform_options(self, train: bool) -> dict:
        """Keyword arguments of ``label_maps.transform`` for training (random crops and
        flips) or evaluation (whole images, sizes rounded to the generator's stride)."""
        d = self.config.data
        mode = d.resize_or_crop
        if not train:  # whole images at the training scale (width load_size for the
            # resizing modes, aspect kept), sizes rounded to the generator's stride
            mode = "none" if mode in ("none", "crop") else "scale_width"
        return dict(
            mode=mode,
            rounded=not train,
            load_size=d.load_size,
            fine_size=d.fine_size,
            base=self.base,
            flip=train and d.hflip,
            max_instances=self.config.max_instances,
        )

    def train_shape(self) -> tuple[int, int]:
        """``(H, W)`` of every training example (one compiled step)."""
        d = self.config.data
        if "crop" in d.resize_or_crop:
            return d.fine_size, d.fine_size
        h, w = self.train_source[0]["label"].shape[:2]
        return target_size(h, w, d.resize_or_crop, d.load_size, self.base)

    def train_data(self, process_index: int = 0, process_count: int = 1):
        data = self.config.data
        check_process_split(data.batch_size, process_count)
        shape = self.train_shape()
        if shape[0] % self.base or shape[1] % self.base:
            raise UserError(
                f"Training examples are {shape[1]}x{shape[0]} after resize_or_crop="
                f"{data.resize_or_crop!r}, not multiples of {self.base} as the generator needs; "
                "change load_size/fine_size or use resize_or_crop='none'."
            )
        return batched_iterator(
            self.train_source,
            functools.partial(transform, expected=shape, **self.transform_options(True)),
            data,
            seed=self.config.seed,
            process_index=process_index,
            process_count=process_count,
        )

    def example_batch(self, batch_size: int) -> dict:
        h, w = self.train_shape()
        return self.random_batch(batch_size, h, w)

    def random_batch(self, batch_size: int, h: int, w: int) -> dict:
        """A random batch of the training layout at ``h``×``w`` (benchmarks, tests)."""
        rng = np.random.default_rng(0)
        shape = (batch_size, h, w)
        label = (
            rng.integers(0, self.label_nc, shape, dtype=np.int32)
            if self.label_nc
            else rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
        )
        batch = {"label": label, "image": rng.integers(0, 256, (*shape, 3), dtype=np.uint8)}
        if self.use_instance:
            batch["inst"] = rng.integers(0, 4, shape, dtype=np.int32)
        return batch

    # -- networks -------------------------------------------------------------------
    def constants(self) -> dict:
        """The frozen VGG19: for the VGG loss, and for the evaluation's VGG distance
        whenever ``vgg_weights`` is set (also when the loss is off)."""
        if "vgg" not in self.weights and not self.config.vgg_weights:
            return {}
        return {"vgg": loss_vgg19_params(self.config.vgg_weights, VGG_WEIGHTS)}

    def encode(self, batch: dict):
        """``(G/D label input, real photo in [-1, 1] or None)`` of a uint8/int batch."""
        inst = batch["inst"] if self.use_instance else None
        x = encode_labels(batch["label"], inst, self.label_nc)
        real = batch["image"].astype(jnp.float32) / 127.5 - 1.0 if "image" in batch else None
        return x, real

    def generate(self, gen: dict, x, real, inst):
        """G's output in [-1, 1]; ``gen`` = ``{'g': G params[, 'e': E params]}``."""
        if self.encoder is not None:
            feat = self.encoder.apply({"params": gen["e"]}, real, inst)
            x = jnp.concatenate([x, feat.astype(x.dtype)], -1)
        return self.model.apply({"params": gen["g"]}, x)

    def init(self, rng: jax.Array) -> TrainState:
        g_rng, d_rng, e_rng, rng = jax.random.split(rng, 4)
        s = 2 * self.base
        x = jnp.zeros((1, s, s, self.input_channels()))
        params = {
            "g": self.model.init(g_rng, x)["params"],
            "d": self.disc.init(
                d_rng, jnp.zeros((1, s, s, input_channels(self.label_nc, self.use_instance) + 3))
            )["params"],
        }
        if self.encoder is not None:
            params["e"] = self.encoder.init(
                e_rng, jnp.zeros((1, s, s, 3)), jnp.zeros((1, s, s), jnp.int32)
            )["params"]
        gen = self._gen(params)
        opt_state = {"g": self.adam.init(gen), "d": self.adam.init(params["d"])}
        if self.fixes_global:
            opt_state["g_fix"] = self.adam.init(self._enhancer(gen))
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            rng=rng,
            params=params,
            opt_state=opt_state,
            batch_stats={},
            ema=None,
            extras={},
        )

    @property
    def fixes_global(self) -> bool:
        return bool(self.n_local and self.config.epochs.niter_fix_global)

    @staticmethod
    def _gen(params: dict) -> dict:
        """What G's optimizer updates: G, and E when instance features are on."""
        return {k: params[k] for k in ("g", "e") if k in params}

    def _enhancer(self, gen: dict) -> dict:
        """The part of ``gen`` trained while the global generator is fixed: the outermost
        enhancer (``model{N}_*``, the official ``startswith('model' + N)``) and E."""
        prefix = f"model{self.n_local}_"
        out = {"g": {k: v for k, v in gen["g"].items() if k.startswith(prefix)}}
        if "e" in gen:
            out["e"] = gen["e"]
        return out

    # -- the step -------------------------------------------------------------------
    def _d(self, d_params, x, fake, real):
        """D on ``[x|fake; x|real]`` as one batch -> (fake outputs, real outputs)."""
        n = x.shape[0]
        outs = self.disc.apply(
            {"params": d_params},
            jnp.concatenate(
                [jnp.concatenate([x, fake.astype(x.dtype)], -1), jnp.concatenate([x, real], -1)], 0
            ),
        )
        return [[o[:n] for o in s] for s in outs], [[o[n:] for o in s] for s in outs]

    def generator_loss(self, gen, d_params, x, real, inst, consts):
        w = self.weights
        fake = self.generate(gen, x, real, inst)
        d_fake, d_real = self._d(d_params, x, fake, real)
        per_scale, terms = {}, {}
        if "gan" in w:
            per_scale["g_gan"] = [w["gan"] * v for v in multiscale_gan_loss(d_fake, True)]
        if "feat" in w:
            per_scale["g_feat"] = [w["feat"] * v for v in feature_matching_loss(d_fake, d_real)]
        for k, v in per_scale.items():
            terms[k] = sum(v)
        if "vgg" in w:
            features = lambda im: self.vgg.apply({"params": consts["vgg"]}, im)  # noqa: E731
            terms["g_vgg"] = w["vgg"] * pix2pixhd_vgg_distance(features, fake, real)
        if "l1" in w:  # not in pix2pixHD (pix2pix's L1 term); off in its recipes
            terms["g_l1"] = w["l1"] * jnp.mean(jnp.abs(fake - real))
        return sum(terms.values()), (terms, per_scale, fake)

    def discriminator_loss(self, d_params, x, fake, real):
        d_fake, d_real = self._d(d_params, x, jax.lax.stop_gradient(fake), real)
        fake_l = multiscale_gan_loss(d_fake, False)
        real_l = multiscale_gan_loss(d_real, True)
        return 0.5 * (sum(fake_l) + sum(real_l)), {"d_fake": fake_l, "d_real": real_l}

    def _step(self, state: TrainState, batch: dict, consts: dict, *, fixed: bool):
        x, real = self.encode(batch)
        inst = batch.get("inst")
        lr = self.schedule(state.step)
        gen = self._gen(state.params)
        d_params = state.params["d"]
        opt_key = "g_fix" if fixed else "g"

        def merged(trained):
            """All of G (+E): in the fixed phase the global generator's params are
            constants and only the enhancer's (and E's) are differentiated."""
            return {**gen, **trained, "g": {**gen["g"], **trained["g"]}} if fixed else trained

        g = gradient_step(
            lambda t: self.generator_loss(merged(t), d_params, x, real, inst, consts),
            self._enhancer(gen) if fixed else gen,
            self.adam,
            state.opt_state[opt_key],
            lr=lr,
        )
        terms, per_scale, fake = g.aux
        new_gen = merged(g.params)
        metrics = {f"loss_{k}": v for k, v in terms.items()}
        ok, new_d, d_opt = g.ok, d_params, state.opt_state["d"]
        if {"gan", "feat"} & set(self.weights):
            d = gradient_step(
                lambda dp: self.discriminator_loss(dp, x, fake, real),
                d_params,
                self.adam,
                state.opt_state["d"],
                lr=lr,
            )
            ok, new_d, d_opt = ok & d.ok, d.params, d.opt_state
            per_scale = {**per_scale, **d.aux}
            metrics.update(loss_d_fake=sum(d.aux["d_fake"]), loss_d_real=sum(d.aux["d_real"]))
        for k, values in per_scale.items():  # s0 = the full-resolution scale
            metrics.update({f"loss_{k}_s{i}": v for i, v in enumerate(values)})
        new = commit(
            state,
            ok,
            params={**state.params, **new_gen, "d": new_d},
            opt_state={**state.opt_state, opt_key: g.opt_state, "d": d_opt},
        )
        metrics.update(loss=g.loss, lr=lr, nonfinite=1.0 - ok.astype(jnp.float32))
        return new, metrics

    def train_step(self, state, batch, consts):
        return self._step(state, batch, consts, fixed=False)

    def train_step_fixed_global(self, state, batch, consts):
        """The ``niter_fix_global`` phase: only the outermost enhancer (and E) learn."""
        return self._step(state, batch, consts, fixed=True)

    def phases(self):
        if not self.fixes_global:
            return [(0, self.train_step)]
        switch = self.config.epochs.niter_fix_global * self.steps_per_epoch
        return [(0, self.train_step_fixed_global), (switch, self.train_step)]

    # -- init_from: the coarse-to-fine start ----------------------------------------
    def init_from(self, state: TrainState, name: str, kwargs: dict, variables: dict, raw=None):
        """A partial load (official ``load_pretrain``): a global generator fills a local
        one's ``global`` part (its output layer is ignored); from a training workdir the
        discriminator (and encoder) are loaded by name too, so a 2-scale D fills
        ``scale0``/``scale1`` of a 3-scale one and ``scale2`` keeps its init."""
        if not name.startswith("pix2pixhd_"):
            raise UserError(
                f"init_from={self.config.init_from!r} holds a {name} model, not a pix2pixHD "
                "generator."
            )
        loaded = variables["params"]
        if name == "pix2pixhd_global" and self.n_local:
            loaded = {"global": loaded}
        params = dict(state.params)
        params["g"] = partial_load(state.params["g"], loaded, "init_from generator")
        if raw is not None:  # a training workdir: its D (and E) too
            trained = state_field(raw, "params")
            for role in ("d", "e"):
                if role in trained and role in params:
                    params[role] = partial_load(params[role], trained[role], f"init_from {role}")
        sharding = jax.tree.leaves(state.params["g"])[0].sharding
        return state.replace(params=jax.device_put(params, sharding))

    # -- export and evaluation ------------------------------------------------------
    def eval_variables(self, state: TrainState) -> dict:
        out = {"params": state.params["g"]}
        if self.encoder is not None:
            out["encoder"] = state.params["e"]
        return out

    def predict(self, variables: dict, batch: dict) -> jax.Array:
        """A label batch -> the synthesised photo in [0, 1] (E encodes the real photo
        when instance features are on, the official ``--use_encoded_image``)."""
        x, real = self.encode(batch)
        gen = {"g": variables["params"]}
        if self.encoder is not None:
            gen["e"] = variables["encoder"]
        return (self.generate(gen, x, real, batch.get("inst")) + 1.0) / 2.0

    @classmethod
    def graph(cls, module, variables, config=None) -> GraphSignature:
        """Label ids (``label``, ``(N, H, W)`` int32 below ``label_nc``) and instance ids
        (``instance``, the official ``*_instanceIds``) in, the photo in [0, 1] out: the
        one-hot encoding and the instance edges are inside the graph. With instance
        features, their map (``features``, sampled from the cluster centres on the host
        as ``jaxsr.synthesize`` does) is a third input. ``config`` ``None`` (a converted
        generator): Cityscapes' 35 classes, an instance edge channel if one is left."""
        params = variables["params"]
        in_ch = int(params.get("global", params)["conv_in"]["kernel"].shape[2])
        if config is not None:
            label_nc, use_instance = int(config.label_nc), not config.no_instance
            feat_num = config.encoder.feat_num if config.instance_feat else 0
        else:
            label_nc, feat_num = 35, 0
            use_instance = in_ch == input_channels(label_nc, True)
        if not label_nc:
            raise UserError("A generator of RGB label images (label_nc 0) is not exported.")
        if input_channels(label_nc, use_instance, feat_num) != in_ch:
            raise UserError(
                f"The generator takes {in_ch} input channels, not the {label_nc} classes "
                f"{'+ 1 edge ' if use_instance else ''}of its description; export it from "
                "its training workdir, whose config says how its labels are encoded."
            )
        inputs = [GraphInput("label", 0, ids=label_nc)]
        inputs += [GraphInput("instance", 0, ids=8)] if use_instance else []
        inputs += [GraphInput("features", feat_num)] if feat_num else []

        def fn(label, *rest):
            inst = rest[0] if use_instance else None
            x = encode_labels(label, inst, label_nc)
            if feat_num:
                x = jnp.concatenate([x, rest[-1].astype(x.dtype)], -1)
            return jnp.clip((module.apply(variables, x) + 1.0) / 2.0, 0.0, 1.0)

        # Padded to multiples of m, a side above m leaves the 2 pixels that the bottom
        # of G's reflection padding needs.
        m = module.size_multiple
        return GraphSignature(tuple(inputs), fn, 1, m, min_side=m + 1)

    def evaluator(self, consts: dict) -> SynthesisEvaluator:
        """Held-out label maps (``data.eval``): L1 and VGG distance to the real photos,
        for the model and for painting each class with its mean training colour."""
        cfg = self.config
        source = make_label_source(
            cfg.data.eval, label_nc=self.label_nc, instances=self.use_instance, split="eval"
        )
        opts = self.transform_options(False)
        rng = np.random.default_rng(0)
        examples = [
            (source.names[i], transform(source[i], rng, **opts)) for i in range(len(source))
        ]
        train = self.train_source
        n = min(len(train), 100)  # the colour statistics need no more
        without_instances = ({k: v for k, v in train[i].items() if k != "inst"} for i in range(n))
        colors = class_mean_colors(
            [transform(ex, rng, **opts) for ex in without_instances], self.label_nc
        )
        vgg = None
        if "vgg" in consts:
            fn = jax.jit(
                lambda c, a, b: pix2pixhd_vgg_distance(
                    lambda im: self.vgg.apply({"params": c}, im), a, b
                )
            )
            vgg = lambda a, b: float(fn(consts["vgg"], a, b))  # noqa: E731
        return SynthesisEvaluator(examples, colors, vgg_distance=vgg, dataset=cfg.data.eval.kind)
