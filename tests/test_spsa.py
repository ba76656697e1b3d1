"""SPSA (segmentation-prior self-attention): blockwise = dense = a NumPy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsr.models.spsa import SPSA


def _softmax(a):
    e = np.exp(a - a.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def reference(params, x, prob, *, fea=True, seg=True, renormalize=False):
    """The spec's formulas (MODELS.md §5.2) in float64, one query row at a time."""
    b, hh, ww, c = x.shape
    n = hh * ww
    conv = lambda name: (
        np.asarray(x, np.float64).reshape(b, n, c)
        @ np.asarray(  # noqa: E731
            params[name]["kernel"], np.float64
        ).reshape(c, -1)
        + np.asarray(params[name]["bias"], np.float64)
    )
    hv = conv("h")
    p = np.asarray(prob, np.float64).reshape(b, n, -1)
    out = np.zeros_like(hv)
    for bi in range(b):
        for j in range(n):
            maps = []
            if fea:
                maps.append(
                    _softmax(np.array([conv("f")[bi, i] @ conv("g")[bi, j] for i in range(n)]))
                )
            if seg:
                maps.append(_softmax(np.array([p[bi, i] @ p[bi, j] for i in range(n)])))
            if len(maps) == 2:
                bf, bs = maps
                w = np.abs(bs - bf)
                beta = w * bs + (1 - w) * bf
                if renormalize:
                    beta = beta / beta.sum()
            else:
                beta = maps[0]
            out[bi, j] = beta @ hv[bi]
    gamma = float(params["gamma"])
    return np.asarray(x, np.float64) + gamma * out.reshape(x.shape)


@pytest.fixture
def inputs():
    kx, kp = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (2, 4, 6, 16))
    prob = jax.nn.softmax(3 * jax.random.normal(kp, (2, 4, 6, 8)), -1)
    return x, prob


@pytest.mark.parametrize(
    "fea,seg,renormalize",
    [(True, True, False), (True, True, True), (True, False, False), (False, True, False)],
)
def test_spsa_matches_the_spec_blockwise_and_dense(inputs, fea, seg, renormalize):
    x, prob = inputs
    layer = SPSA(
        feature_attention=fea, segmentation_attention=seg, renormalize=renormalize, query_block=6
    )
    params = layer.init(jax.random.key(1), x, prob)["params"]
    params = {**params, "gamma": jnp.asarray(0.7)}  # γ starts at 0: make the branch count
    want = reference(params, x, prob, fea=fea, seg=seg, renormalize=renormalize)
    blocked = layer.apply({"params": params}, x, prob)
    dense = layer.clone(query_block=0).apply({"params": params}, x, prob)
    np.testing.assert_allclose(blocked, want, atol=1e-5)
    np.testing.assert_allclose(blocked, dense, atol=1e-6)


def test_blockwise_gradients_equal_dense_and_do_not_store_the_map():
    """The backward pass recomputes each block's β (``jax.checkpoint``): same gradients
    as the dense layer, and the compiled gradient's temporaries stay far below one
    N × N map (N = 2,304 here: 20 MiB per map in fp32)."""
    kx, kp = jax.random.split(jax.random.key(2))
    x = jax.random.normal(kx, (1, 48, 48, 16))
    prob = jax.nn.softmax(3 * jax.random.normal(kp, (1, 48, 48, 8)), -1)
    layer = SPSA(query_block=256)
    params = {**layer.init(jax.random.key(1), x, prob)["params"], "gamma": jnp.asarray(0.5)}

    def grads(module):
        # prob is an argument, not a closed-over constant XLA would fold at compile time.
        loss = lambda p, x, prob: jnp.sum(module.apply({"params": p}, x, prob) ** 2)  # noqa: E731
        return jax.jit(jax.grad(loss, argnums=(0, 1)))

    blocked, dense = grads(layer), grads(layer.clone(query_block=0))
    got = jax.tree.leaves(blocked(params, x, prob))
    want = jax.tree.leaves(dense(params, x, prob))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=1e-5)
    analysis = blocked.lower(params, x, prob).compile().memory_analysis()
    if analysis is None:
        pytest.skip("this backend gives no compile-time memory analysis")
    n = 48 * 48
    assert analysis.temp_size_in_bytes < n * n * 4, analysis.temp_size_in_bytes


def test_spsa_starts_as_identity_and_checks_its_inputs(inputs):
    x, prob = inputs
    layer = SPSA(query_block=8)
    variables = layer.init(jax.random.key(1), x, prob)
    assert float(variables["params"]["gamma"]) == 0.0
    np.testing.assert_array_equal(layer.apply(variables, x, prob), x)
    n_params = sum(v.size for v in jax.tree.leaves(variables))
    assert n_params == 2 * (16 * 2 + 2) + (16 * 16 + 16) + 1
    # A block that does not divide the 24 positions pads the last one: same result.
    params = {**variables["params"], "gamma": jnp.asarray(0.5)}
    np.testing.assert_allclose(
        SPSA(query_block=5).apply({"params": params}, x, prob),
        SPSA(query_block=0).apply({"params": params}, x, prob),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="needs the class probabilities"):
        SPSA().init(jax.random.key(1), x)


def _probes(layer, params, x, prob):
    """β's rows at the layer's four probe queries, ``(B, 4, H, W)``."""
    _, inter = layer.apply({"params": params}, x, prob, mutable=["intermediates"])
    return np.asarray(inter["intermediates"]["attention"][0])


@pytest.mark.parametrize("w,alone", [(0.0, "feature"), (1.0, "segmentation")])
def test_fixed_weight_zero_is_sagan_and_one_is_segmentation_attention(inputs, w, alone):
    x, prob = inputs
    mixed = SPSA(seg_weight=w, query_block=6)
    single = SPSA(
        feature_attention=alone == "feature",
        segmentation_attention=alone == "segmentation",
        query_block=6,
    )
    params = {**mixed.init(jax.random.key(1), x, prob)["params"], "gamma": jnp.asarray(0.7)}
    sub = {k: v for k, v in params.items() if k in ("h", "gamma") or alone == "feature"}
    np.testing.assert_allclose(
        mixed.apply({"params": params}, x, prob), single.apply({"params": sub}, x, prob), atol=1e-6
    )
    np.testing.assert_allclose(
        _probes(mixed, params, x, prob), _probes(single, sub, x, prob), atol=1e-7
    )


def test_attention_rows_sum_to_one_and_probes_match_the_reference(inputs):
    x, prob = inputs
    layer = SPSA(query_block=6)
    params = layer.init(jax.random.key(1), x, prob)["params"]
    beta = _probes(layer, params, x, prob)
    assert beta.shape == (2, 4, 4, 6) and (beta >= 0).all()
    np.testing.assert_allclose(beta.sum((2, 3)), 1, atol=1e-6)
    # Without renormalisation the |β_seg − β_fea| mix is not row-stochastic.
    raw = _probes(layer.clone(renormalize=False), params, x, prob)
    assert np.abs(raw.sum((2, 3)) - 1).max() > 1e-3
