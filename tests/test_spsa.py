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


def test_spsa_starts_as_identity_and_checks_its_inputs(inputs):
    x, prob = inputs
    layer = SPSA(query_block=8)
    variables = layer.init(jax.random.key(1), x, prob)
    assert float(variables["params"]["gamma"]) == 0.0
    np.testing.assert_array_equal(layer.apply(variables, x, prob), x)
    n_params = sum(v.size for v in jax.tree.leaves(variables))
    assert n_params == 2 * (16 * 2 + 2) + (16 * 16 + 16) + 1
    with pytest.raises(ValueError, match="must divide"):
        SPSA(query_block=5).init(jax.random.key(1), x, prob)
    with pytest.raises(ValueError, match="needs the class probabilities"):
        SPSA().init(jax.random.key(1), x)
