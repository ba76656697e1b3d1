"""SPSAGAN's generator (a documented reconstruction, spec §5.2): RRSB vs RRDB sizes, the
ablation switches as one code path, step 1 -> step 2 weight loading, attention images."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import recipe_config

from jaxsr.errors import UserError
from jaxsr.models.rrdbnet import RRDB, RRDBNet
from jaxsr.models.spsagan import SPSAGenerator, pool_prior
from jaxsr.tasks import make_task
from jaxsr.train import sharding
from jaxsr.train.loop import init_state
from jaxsr.trees import flatten_paths


def _count(tree):
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(tree))


def _conv(cin, cout):
    return 9 * cin * cout + cout


@pytest.mark.parametrize("nf,gc", [(64, 32), (32, 16)])
def test_rrsb_and_rrdb_parameter_counts(nf, gc):
    x = jnp.zeros((1, 8, 8, nf))
    dense = _count(jax.eval_shape(RRDB(nf, gc).init, jax.random.key(0), x))
    sparse = _count(jax.eval_shape(RRDB(nf, gc, connectivity="sparse").init, jax.random.key(0), x))
    # RDB: conv j reads nf + (j-1)·gc channels; RRSB's reads the input and the last output.
    rdb = sum(_conv(nf + j * gc, gc) for j in range(4)) + _conv(nf + 4 * gc, nf)
    rsb = _conv(nf, gc) + 3 * _conv(nf + gc, gc) + _conv(nf + gc, nf)
    assert dense == 3 * rdb and sparse == 3 * rsb
    if nf == 64:
        assert (dense, sparse) == (719_424, 470_592)


def test_all_switches_off_is_esrgans_rrdbnet():
    kw = dict(num_feat=16, num_block=2, num_grow_ch=8)
    lq = jax.random.uniform(jax.random.key(1), (1, 10, 12, 3))
    esrgan = RRDBNet(scale=4, **kw)
    variables = esrgan.init(jax.random.key(0), lq)
    plain = SPSAGenerator(connectivity="dense", sft=False, spsa=False, **kw)
    np.testing.assert_allclose(plain.apply(variables, lq), esrgan.apply(variables, lq), atol=1e-6)


def test_ablation_switches_change_only_their_modules():
    kw = dict(num_feat=16, num_block=2, num_grow_ch=8, cond_ch=4, query_block=32)
    lq, seg = jnp.zeros((1, 8, 8, 3)), jnp.full((1, 32, 32, 8), 1 / 8)

    def names(**switches):
        v = jax.eval_shape(SPSAGenerator(**kw, **switches).init, jax.random.key(0), lq, seg)
        return {"/".join(p) for p in flatten_paths(v["params"])}

    full = names()
    assert {
        "SPSA/f/kernel",
        "SPSA/g/kernel",
        "SPSA/h/kernel",
        "SFT_1/SFT_scale_conv1/kernel",
        "CondNet_0/kernel",
    } <= full
    assert not any(n.startswith("SPSA/f") for n in names(feature_attention=False))
    assert not any(n.startswith(("SFT", "Cond")) for n in names(sft=False))
    assert not any(n.startswith("SPSA") for n in names(spsa=False))
    with pytest.raises(ValueError, match="needs the class probabilities"):
        SPSAGenerator(**kw).init(jax.random.key(0), lq)


def test_pooled_prior_stays_a_distribution():
    seg = jax.nn.softmax(jax.random.normal(jax.random.key(0), (2, 16, 12, 8)), -1)
    pooled = pool_prior(seg, 4)
    assert pooled.shape == (2, 4, 3, 8)
    np.testing.assert_allclose(pooled.sum(-1), 1, atol=1e-6)
    np.testing.assert_allclose(pooled[0, 1, 2], seg[0, 4:8, 8:12].mean((0, 1)), atol=1e-6)


def test_step2_starts_from_step1_weights_and_keeps_new_modules_initialised():
    step1 = make_task(recipe_config("spsagan", "tiny,step1"))
    step2_config = recipe_config("spsagan", "tiny")
    step2 = make_task(step2_config)
    mesh = sharding.make_mesh()
    s1 = init_state(step1, step1.config, mesh)
    fresh = init_state(step2, step2_config, mesh)
    name, kwargs = step1.model_spec(step1.config)
    loaded = step2.init_from(fresh, name, kwargs, {"params": s1.params["g"]})
    old, new, init = (
        flatten_paths(jax.tree.map(np.asarray, t))
        for t in (s1.params["g"], loaded.params["g"], fresh.params["g"])
    )
    assert set(old) < set(new)
    for path, value in new.items():
        want = old[path] if path in old else init[path]
        np.testing.assert_array_equal(value, want)
    assert float(new[("SPSA", "gamma")]) == 0.0  # SPSA starts as an identity
    bad = {"params": {**s1.params["g"], "conv_first": {"kernel": jnp.zeros((3, 3, 3, 5))}}}
    with pytest.raises(UserError, match="conv_first/kernel"):
        step2.init_from(fresh, name, kwargs, bad)
    with pytest.raises(UserError, match="starts from its step 1"):
        step2.init_from(fresh, "mirnet", {}, {"params": {}})


def test_predict_returns_the_attention_strip():
    config = recipe_config("spsagan", "tiny")
    task = make_task(config)
    state = init_state(task, config, sharding.make_mesh())
    lq = np.random.default_rng(0).uniform(0, 1, (1, 12, 16, 3)).astype(np.float32)
    sr, images = task.predict(task.eval_variables(state), task.eval_inputs(lq))
    assert sr.shape == (1, 48, 64, 3)
    strip = np.asarray(images["attention"])
    assert strip.shape == (1, 12, 64, 1) and strip.dtype == np.uint8 and strip.max() == 255
