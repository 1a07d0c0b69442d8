"""The one-layer transformer of the factual-recall experiments: H attention heads read from the last position,
then an MLP, over frozen (or trainable) random embeddings.

For a sequence x_1 … x_T (rows of ``wte``), head h scores every position against the last one,
s_t = x_tᵀ K_h Q_hᵀ x_T / √d_h, weighs them a = softmax(s) (or a = s for linear attention), and reads
o_h = Σ_t a_t V_hᵀ x_t. Then h = concat_h(o_h)·O, z = W2ᵀ relu(W1ᵀ h + b1), y = h + z, and the logits over
the R·D answers are ``unembed · y``. No residual from the token embedding, no normalisation, no positions.

Parameters (a flat dict; shapes in paper symbols): ``wte`` (vocab, d), ``unembed`` (R·D, d), ``Q``, ``K``,
``V`` (H, d, d_h), ``O`` (H·d_h, d), ``W1`` (d, m), ``b1`` (m,), ``W2`` (m, d). m = 0 is a model without
MLP. The paper counts 4·H·d_h·d + 2·m·d weights; the bias and trainable embeddings are counted apart
(:func:`param_counts`).

Paper: §4, Eq. (9)–(10); SPEC §3.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp

from factrecall.core.base import Array, Float, Int, Key, Model, Params, normal
from factrecall.core.bounds import attention_params, mlp_params
from factrecall.core.errors import check
from factrecall.memories.embeddings import gaussian

ATTENTIONS = ("softmax", "linear")
WEIGHTS = ("Q", "K", "V", "O", "W1", "b1", "W2")
EMBEDDINGS = ("wte", "unembed")


class TransformerConfig(NamedTuple):
    """Shape of a one-layer transformer (hashable).

    Attributes:
        d: embedding dimension.
        H: heads.
        d_h: head dimension.
        m: MLP width (0: no MLP).
        vocab: input vocabulary size.
        n_out: output vocabulary size (R·D answers).
        attention: ``softmax`` or ``linear``.
        train_embeddings: whether ``wte`` and ``unembed`` are trained (frozen by default).
    """

    d: int
    H: int
    d_h: int
    m: int
    vocab: int
    n_out: int
    attention: str = "softmax"
    train_embeddings: bool = False


def validate(cfg: TransformerConfig) -> None:
    """Raise :class:`ConfigError` naming the first invalid field of ``cfg``."""
    for name in ("d", "H", "d_h", "vocab", "n_out"):
        value = getattr(cfg, name)
        check(value >= 1, f"{name} must be ≥ 1, got {name}={value}")
    check(cfg.m >= 0, f"width m must be ≥ 0 (0: no MLP), got m={cfg.m}")
    check(
        cfg.attention in ATTENTIONS,
        f"attention must be one of {', '.join(ATTENTIONS)}, got {cfg.attention!r}",
    )


class ParamCounts(NamedTuple):
    """Parameter counts, each saying what it includes."""

    paper: int  # 4·H·d_h·d + 2·m·d: Q, K, V, O, W1, W2 (the paper's count)
    attention: int  # 4·H·d_h·d
    mlp: int  # 2·m·d
    bias: int  # m (b1), counted apart
    embeddings: int  # (vocab + n_out)·d when trained, else 0

    @property
    def total(self) -> int:
        """Every trained parameter: paper + bias + trained embeddings."""
        return self.paper + self.bias + self.embeddings


def param_counts(cfg: TransformerConfig) -> ParamCounts:
    """Parameter counts of ``cfg`` (the paper's, from :mod:`factrecall.core.bounds`).

    >>> param_counts(TransformerConfig(d=32, H=4, d_h=8, m=64, vocab=65, n_out=128)).paper
    8192
    """
    attention = attention_params(cfg.d, cfg.H, cfg.d_h)
    mlp = mlp_params(cfg.d, cfg.m)
    embeddings = (cfg.vocab + cfg.n_out) * cfg.d if cfg.train_embeddings else 0
    return ParamCounts(attention + mlp, attention, mlp, cfg.m, embeddings)


def init(cfg: TransformerConfig, *, key: Key) -> Params:
    """Random parameters: embeddings N(0, 1/d); Q, K, V ~ N(0, 1/d_h); O ~ N(0, 1/d); W1, W2 LeCun; b1 = 0.

    Prefix-stable: the first heads and hidden units do not depend on ``cfg.H`` or ``cfg.m`` (see
    :func:`init_padded`), so a padded model starts from exactly the weights of the unpadded one.
    """
    return init_padded(cfg, cfg.H, cfg.m, key=key)


def init_padded(cfg: TransformerConfig, H: int | Array, m: int | Array, *, key: Key) -> Params:
    """Parameters of the model with H heads and width m, zero-padded to ``cfg.H`` heads and ``cfg.m`` units.

    Heads ``≥ H`` and units ``≥ m`` are exactly zero; with zero Q, K, V, O rows and W1, W2 columns/rows they
    contribute nothing and receive zero gradient, so training the padded model trains the small one (use
    :func:`masked` in the loss to make this hold under any optimizer). ``H`` and ``m`` may be traced, so
    one vmapped program can initialise a grid of shapes. Every weight is drawn with its padded axis
    leading (row-major, partitionable Threefry), so the first heads/units are prefix-stable.

    >>> cfg = TransformerConfig(d=8, H=4, d_h=2, m=6, vocab=5, n_out=3)
    >>> small = cfg._replace(H=2, m=3)
    >>> p, q = init_padded(cfg, 2, 3, key=jax.random.key(0)), init(small, key=jax.random.key(0))
    >>> bool(jnp.all(p["W1"][:, :3] == q["W1"])), float(jnp.abs(p["Q"][2:]).max())
    (True, 0.0)
    """
    k = [jax.random.fold_in(key, i) for i in range(8)]
    heads = (jnp.arange(cfg.H) < H).astype(jnp.float32)
    units = (jnp.arange(cfg.m) < m).astype(jnp.float32)
    qkv = lambda kk: normal(kk, (cfg.H, cfg.d, cfg.d_h)) / math.sqrt(cfg.d_h)  # noqa: E731
    params = {
        "wte": gaussian(cfg.vocab, cfg.d, key=k[0]),
        "unembed": gaussian(cfg.n_out, cfg.d, key=k[1]),
        "Q": qkv(k[2]),
        "K": qkv(k[3]),
        "V": qkv(k[4]),
        "O": normal(k[5], (cfg.H * cfg.d_h, cfg.d)) / math.sqrt(cfg.d),
        "W1": normal(k[6], (cfg.m, cfg.d)).T / math.sqrt(cfg.d),
        "b1": jnp.zeros((cfg.m,)),
        "W2": normal(k[7], (cfg.m, cfg.d)) / jnp.sqrt(jnp.maximum(m, 1).astype(jnp.float32)),
    }
    return masked(params, heads, units)


def masked(params: Params, heads: Float[Array, " H"], units: Float[Array, " m"]) -> Params:
    """``params`` with heads where ``heads == 0`` and hidden units where ``units == 0`` set to zero.

    Used in the loss of padded models: masked weights contribute exactly zero and get zero gradient.
    """
    d_h = params["Q"].shape[-1]
    return {
        **params,
        "Q": params["Q"] * heads[:, None, None],
        "K": params["K"] * heads[:, None, None],
        "V": params["V"] * heads[:, None, None],
        "O": params["O"] * jnp.repeat(heads, d_h)[:, None],
        "W1": params["W1"] * units[None, :],
        "b1": params["b1"] * units,
        "W2": params["W2"] * units[:, None],
    }


def attention(
    params: Params, x: Float[Array, "T d"], kind: str = "softmax"
) -> tuple[Float[Array, "H T"], Float[Array, "H d_h"]]:
    """Per-head attention weights a (H, T) of the last position, and head outputs o_h = Σ_t a_t V_hᵀ x_t.

    Evaluated in the cheapest order: s_t = x_t · (K_h (Q_hᵀ x_T)) and o_h = V_hᵀ (Σ_t a_t x_t), which costs
    O(H·(d·d_h + T·d)) per sequence instead of O(H·T·d·d_h) for projecting every position.
    """
    d_h = params["Q"].shape[-1]
    q = jnp.einsum("d,hde->he", x[-1], params["Q"])  # Q_hᵀ x_T
    kq = jnp.einsum("hde,he->hd", params["K"], q)  # K_h Q_hᵀ x_T
    scores = (kq @ x.T) / math.sqrt(d_h)  # (H, T): x_tᵀ K_h Q_hᵀ x_T
    a = jax.nn.softmax(scores, axis=-1) if kind == "softmax" else scores
    return a, jnp.einsum("hd,hde->he", a @ x, params["V"])


class Activations(NamedTuple):
    """One sequence's activations: the keys and values of the two associative memories, and the logits."""

    u: Float[Array, " Hd_h"]  # the heads' outputs concat_h(o_h): what O reads
    h: Float[Array, " d"]  # the attention output u·O: what the MLP reads
    k: Float[Array, " m"]  # the MLP's hidden activations relu(h·W1 + b1) (zeros when the MLP is ablated)
    logits: Float[Array, " n_out"]


def activations(
    params: Params,
    tokens: Int[Array, " T"],
    *,
    kind: str = "softmax",
    head_mask: Float[Array, " H"] | None = None,
    use_mlp: bool = True,
) -> Activations:
    """The forward pass of one sequence with its intermediate activations (see :func:`forward`)."""
    x = params["wte"][tokens]
    _, o = attention(params, x, kind)
    if head_mask is not None:
        o = o * head_mask[:, None]
    u = o.reshape(-1)
    h = u @ params["O"]
    k = jnp.zeros((params["W1"].shape[1],), h.dtype)
    y = h
    if use_mlp and params["W1"].shape[1] > 0:
        k = jax.nn.relu(h @ params["W1"] + params["b1"])
        y = h + k @ params["W2"]
    return Activations(u, h, k, params["unembed"] @ y)


def forward(
    params: Params,
    tokens: Int[Array, " T"],
    *,
    kind: str = "softmax",
    head_mask: Float[Array, " H"] | None = None,
    use_mlp: bool = True,
) -> Float[Array, " n_out"]:
    """Logits over the answers for one sequence; callers vmap over a batch.

    Args:
        params: the parameter dict.
        tokens: token ids, the query position last.
        kind: ``softmax`` or ``linear`` attention.
        head_mask: multiply each head's output by this (1 keeps, 0 ablates the head's value/output path).
        use_mlp: ``False`` ablates the MLP (z = 0).
    """
    return activations(params, tokens, kind=kind, head_mask=head_mask, use_mlp=use_mlp).logits


@functools.cache
def transformer(cfg: TransformerConfig) -> Model:
    """The :class:`~factrecall.core.base.Model` of ``cfg``: ``init(key)``, ``apply(params, tokens)`` per
    sequence.

    >>> cfg = TransformerConfig(d=8, H=2, d_h=4, m=16, vocab=10, n_out=6)
    >>> model = transformer(cfg)
    >>> model.apply(model.init(jax.random.key(0)), jnp.array([1, 2, 9])).shape
    (6,)
    """
    validate(cfg)
    return Model(functools.partial(_init, cfg), functools.partial(forward, kind=cfg.attention))


def _init(cfg: TransformerConfig, key: Key) -> Params:
    return init(cfg, key=key)


def frozen(params: Params, cfg: TransformerConfig) -> Params:
    """``params`` with gradients stopped through the embeddings unless ``cfg.train_embeddings``."""
    if cfg.train_embeddings:
        return params
    return {k: jax.lax.stop_gradient(v) if k in EMBEDDINGS else v for k, v in params.items()}
