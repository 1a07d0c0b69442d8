"""Embedding tables: rows on the unit sphere, orthogonal, one-hot, spiked, and Gaussian N(0, 1/d).

Tables are drawn from a :data:`~factrecall.core.base.Source` (a JAX key, or a seed tuple for NumPy on the
host).
Row ``i`` of a random table depends only on ``(source, i, d)``: a table of ``n`` rows is the first ``n`` rows
of any larger table drawn from the same source. The capacity search relies on this to pad problems of
different sizes to one shape without changing the numbers.

Paper: §3.1 (setting of the associative memories), §4 (embeddings of the transformer).
"""

from __future__ import annotations

from typing import Literal

import jax.numpy as jnp

from factrecall.core.base import Array, Float, Source, normal, substream
from factrecall.core.errors import check

Geometry = Literal["sphere", "orthogonal", "onehot", "spiked"]
GEOMETRIES: tuple[str, ...] = ("sphere", "orthogonal", "onehot", "spiked")


def _normalize(x: Float[Array, "n d"]) -> Float[Array, "n d"]:
    return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def sphere(n: int, d: int, *, key: Source) -> Float[Array, "n d"]:
    """``n`` i.i.d. vectors uniform on the unit sphere of R^d (a Gaussian row divided by its norm).

    >>> import jax
    >>> e = sphere(5, 3, key=jax.random.key(0))
    >>> bool(jnp.allclose(jnp.linalg.norm(e, axis=1), 1.0))
    True
    """
    return _normalize(normal(key, (n, d)))


def orthogonal(n: int, d: int, *, key: Source) -> Float[Array, "n d"]:
    """``n ≤ d`` orthonormal rows: the first ``n`` rows of a random orthogonal d×d matrix.

    >>> import jax
    >>> e = orthogonal(3, 4, key=jax.random.key(0))
    >>> bool(jnp.allclose(e @ e.T, jnp.eye(3), atol=1e-5))
    True
    """
    check(n <= d, f"orthogonal embeddings need n ≤ d, got n={n}, d={d}; use geometry 'sphere' or raise d")
    q, r = jnp.linalg.qr(normal(key, (d, d)))
    q = q * jnp.sign(jnp.diag(r))[None, :]  # Haar-distributed: fix the sign ambiguity of QR
    return q.T[:n]


def onehot(n: int, d: int) -> Float[Array, "n d"]:
    """The first ``n ≤ d`` standard basis vectors of R^d (the dynamics model's embeddings, §6).

    >>> onehot(2, 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    check(n <= d, f"one-hot embeddings need n ≤ d, got n={n}, d={d}; raise d to at least n")
    return jnp.eye(n, d)


def spiked(n: int, d: int, *, key: Source, beta: float = 4.0) -> Float[Array, "n d"]:
    """Anisotropic rows on the sphere: Gaussian with covariance I + β·u uᵀ, then normalised.

    ``u`` is a random unit direction drawn from ``key``. β = 0 gives :func:`sphere`; large β crowds the
    embeddings around ±u, which makes them harder to separate (an option beyond the paper).

    >>> import jax
    >>> e = spiked(4, 8, key=jax.random.key(0), beta=0.0)
    >>> bool(jnp.allclose(e, sphere(4, 8, key=jax.random.fold_in(jax.random.key(0), 1))))
    True
    """
    check(beta >= 0, f"spiked embeddings need beta ≥ 0, got beta={beta}")
    k_u, k_x = substream(key, 0), substream(key, 1)
    u = _normalize(normal(k_u, (1, d)))[0]
    g = normal(k_x, (n, d))
    g = g + (jnp.sqrt(1.0 + beta) - 1.0) * (g @ u)[:, None] * u[None, :]
    return _normalize(g)


def gaussian(n: int, d: int, *, key: Source) -> Float[Array, "n d"]:
    """Rows with i.i.d. N(0, 1/d) entries (the transformer's embeddings and unembeddings, §3).

    >>> import jax
    >>> gaussian(2, 4, key=jax.random.key(0)).shape
    (2, 4)
    """
    return normal(key, (n, d)) / jnp.sqrt(d)


def table(geometry: str, n: int, d: int, *, key: Source, beta: float = 4.0) -> Float[Array, "n d"]:
    """Dispatch on the geometry name: ``sphere``, ``orthogonal``, ``onehot`` or ``spiked``.

    Raises:
        ConfigError: unknown geometry, or ``n > d`` for orthogonal/one-hot tables.
    """
    check(geometry in GEOMETRIES, f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
    if geometry == "sphere":
        return sphere(n, d, key=key)
    if geometry == "orthogonal":
        return orthogonal(n, d, key=key)
    if geometry == "onehot":
        return onehot(n, d)
    return spiked(n, d, key=key, beta=beta)
