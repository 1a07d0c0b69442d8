import jax
import jax.numpy as jnp
import numpy as np
import pytest

from factrecall.core.errors import ConfigError
from factrecall.recall.transformer import (
    TransformerConfig,
    attention,
    forward,
    frozen,
    param_counts,
    transformer,
)

CFG = TransformerConfig(d=8, H=3, d_h=4, m=5, vocab=11, n_out=6)


def _reference(params, tokens, kind="softmax"):
    """The equations of SPEC §3 written with loops, head by head."""
    x = params["wte"][tokens]
    outs = []
    for h in range(params["Q"].shape[0]):
        Q, K, V = params["Q"][h], params["K"][h], params["V"][h]
        s = np.array([x[t] @ K @ Q.T @ x[-1] for t in range(len(tokens))]) / np.sqrt(Q.shape[1])
        a = np.exp(s - s.max()) / np.exp(s - s.max()).sum() if kind == "softmax" else s
        outs.append(sum(a[t] * (V.T @ x[t]) for t in range(len(tokens))))
    h = np.concatenate(outs) @ params["O"]
    z = np.maximum(h @ params["W1"] + params["b1"], 0) @ params["W2"]
    return params["unembed"] @ (h + z)


@pytest.mark.parametrize("kind", ["softmax", "linear"])
def test_forward_matches_the_equations(kind, key):
    params = jax.tree_util.tree_map(np.asarray, transformer(CFG).init(key))
    params["b1"] = np.linspace(-0.3, 0.3, 5)
    tokens = jnp.array([3, 1, 4, 1, 5, 9, 2])
    logits = jax.jit(lambda p, t: forward(p, t, kind=kind))(params, tokens)  # one program, not op by op
    np.testing.assert_allclose(logits, _reference(params, tokens, kind), rtol=2e-4, atol=1e-5)


def test_shapes_and_init_scales(key):
    params = transformer(TransformerConfig(d=64, H=8, d_h=16, m=128, vocab=500, n_out=300)).init(key)
    assert params["Q"].shape == (8, 64, 16) and params["O"].shape == (128, 64)
    assert params["W1"].shape == (64, 128) and params["W2"].shape == (128, 64)
    assert abs(float(jnp.var(params["Q"])) - 1 / 16) < 0.01
    assert abs(float(jnp.var(params["wte"])) - 1 / 64) < 0.002
    assert float(jnp.abs(params["b1"]).max()) == 0.0


def test_no_mlp_and_ablations(key):
    cfg = CFG._replace(m=0)
    params = transformer(cfg).init(key)
    tokens = jnp.array([1, 2, 10])
    out = forward(params, tokens)
    assert out.shape == (6,)
    np.testing.assert_allclose(forward(params, tokens, head_mask=jnp.zeros(3)), 0.0, atol=1e-7)
    full = transformer(CFG).init(key)
    no_mlp = forward(full, tokens, use_mlp=False)
    _, o = attention(full, full["wte"][tokens])
    np.testing.assert_allclose(no_mlp, full["unembed"] @ (o.reshape(-1) @ full["O"]), rtol=1e-5)


def test_parameter_counts_say_what_they_include():
    c = param_counts(TransformerConfig(d=32, H=4, d_h=8, m=64, vocab=65, n_out=128))
    assert c.attention == 4 * 4 * 8 * 32 and c.mlp == 2 * 64 * 32 and c.paper == c.attention + c.mlp
    assert c.bias == 64 and c.embeddings == 0 and c.total == c.paper + 64
    trained = param_counts(
        TransformerConfig(d=32, H=4, d_h=8, m=64, vocab=65, n_out=128, train_embeddings=True)
    )
    assert trained.embeddings == (65 + 128) * 32


def test_frozen_embeddings_get_no_gradient(key):
    params = transformer(CFG).init(key)
    tokens = jnp.array([1, 2, 3])
    grad = lambda cfg: jax.jit(jax.grad(lambda p: jnp.sum(forward(frozen(p, cfg), tokens))))(params)  # noqa: E731
    g = grad(CFG)
    assert float(jnp.abs(g["wte"]).max()) == 0.0 and float(jnp.abs(g["unembed"]).max()) == 0.0
    assert float(jnp.abs(g["Q"]).max()) > 0
    g_train = grad(CFG._replace(train_embeddings=True))
    assert float(jnp.abs(g_train["wte"]).max()) > 0


@pytest.mark.parametrize(
    ("cfg", "match"),
    [
        (CFG._replace(H=0), "H must be ≥ 1"),
        (CFG._replace(m=-1), "width m"),
        (CFG._replace(attention="relu"), "attention must be one of"),
    ],
)
def test_bad_configs(cfg, match):
    with pytest.raises(ConfigError, match=match):
        transformer(cfg)


def test_init_is_prefix_stable_and_padding_is_zero(key):
    from factrecall.recall.transformer import init, init_padded

    big = CFG._replace(H=5, m=9)
    padded = init_padded(big, CFG.H, CFG.m, key=key)
    small = init(CFG, key=key)
    d_h = CFG.d_h
    for name, cut in {"Q": np.s_[:3], "V": np.s_[:3], "O": np.s_[: 3 * d_h], "W1": np.s_[:, :5]}.items():
        np.testing.assert_array_equal(padded[name][cut], small[name])
    np.testing.assert_array_equal(padded["W2"][:5], small["W2"])
    assert float(jnp.abs(padded["K"][3:]).max()) == 0 and float(jnp.abs(padded["W1"][:, 5:]).max()) == 0
    tokens = jnp.array([3, 1, 4, 1, 5])
    np.testing.assert_allclose(forward(padded, tokens), forward(small, tokens), rtol=1e-5, atol=1e-6)
