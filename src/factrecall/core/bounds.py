"""Parameter counts, information-theoretic bounds and the paper's guide lines (no JAX here).

Every count says what it includes. The guide lines read the paper's constants from
:data:`factrecall.core.paper.PAPER` (the one table of them); none is written here.

Paper: §3 (Theorems 1–3 and Figure 1), §5 (lower bounds), Appendix (Figure 6).
"""

from __future__ import annotations

import math

from factrecall.core.paper import PAPER


def linear_params(d: int, rank: int | None = None) -> int:
    """Weights of a linear memory W = A B: d² when full, 2·d·r for rank r < d.

    >>> linear_params(16), linear_params(16, rank=4)
    (256, 128)
    """
    return d * d if rank is None or rank >= d else 2 * d * rank


def mlp_params(d: int, m: int) -> int:
    """Weights of an MLP memory V^T relu(W e + b): 2·m·d (W and V; the bias is counted apart).

    >>> mlp_params(16, 32)
    1024
    """
    return 2 * m * d


def mlp_bias_params(m: int) -> int:
    """The MLP bias b ∈ R^m, reported separately from :func:`mlp_params`."""
    return m


def bits_to_store(N: int, M: int) -> float:
    """Bits needed to store an arbitrary map f*: [N] -> [M]: N·log2 M (§5)."""
    return N * math.log2(M) if M > 1 else 0.0


def bits_per_param(N: int, M: int, n_params: int) -> float:
    """N·log2 M / params: how many bits each parameter holds when N associations are stored."""
    return bits_to_store(N, M) / n_params


def n_log_n(N: float) -> float:
    """N·ln N (natural log), the paper's capacity scale for M = N."""
    return N * math.log(N) if N > 1 else 0.0


def solve_n_log_n(c: float) -> float:
    """The N > 1 with N·ln N = c (Newton's method), e.g. the guide capacity for d² = 1.3·N log N.

    >>> round(solve_n_log_n(n_log_n(100.0)), 6)
    100.0
    """
    if c <= 0:
        return 1.0
    N = max(2.0, c / max(math.log(c), 1.0))
    for _ in range(50):
        step = (N * math.log(N) - c) / (math.log(N) + 1.0)
        N = max(1.0 + 1e-9, N - step)
        if abs(step) < 1e-10 * N:
            break
    return N


def guide_linear(d: float) -> float:
    """The paper's guide capacity of a trained linear memory: N with d² = 1.3·N log N."""
    return solve_n_log_n(d * d / PAPER["linear_d2_over_NlogN"].value)


def ceiling_linear(d: float) -> float:
    """The sharp all-correct ceiling of linear memories: N with N log N = d²/2."""
    return solve_n_log_n(PAPER["linear_ceiling_NlogN_over_d2"].value * d * d)


def guide_hebbian(d: float) -> float:
    """The Hebbian construction, all correct: N with N log N = d²/8."""
    return solve_n_log_n(PAPER["hebbian_NlogN_over_d2"].value * d * d)


def guide_mlp(d: int, m: int) -> float:
    """The paper's guide capacity of a trained MLP memory (M = N): N with m·d = 0.35·N log N."""
    return solve_n_log_n(m * d / PAPER["mlp_md_over_NlogN"].value)


def guide_mlp_fixed_outputs(d: int, m: int) -> float:
    """The paper's guide capacity of a trained MLP memory with M = 32 outputs: N = m·d / 1.2."""
    return m * d / PAPER["mlp_fixed_M_md_over_N"].value


def bits_facts(S: int, R: int, D: int) -> float:
    """Bits needed to store S·R facts whose answers range over D values each: S·R·log2 D (§5).

    >>> bits_facts(32, 32, 8)
    3072.0
    """
    return S * R * math.log2(D) if D > 1 else 0.0


# --------------------------------------------------------------------- the transformer and its facts (§4–§5)


def attention_params(d: int, H: int, d_h: int) -> int:
    """Attention weights of a one-layer transformer: Q, K, V ∈ R^{H×d×d_h} and O ∈ R^{H·d_h×d}: 4·H·d_h·d.

    >>> attention_params(32, 4, 8)
    4096
    """
    return 4 * H * d_h * d


def transformer_params(d: int, H: int, d_h: int, m: int) -> int:
    """The paper's count for a one-layer transformer: 4·H·d_h·d + 2·m·d (bias and embeddings apart).

    >>> transformer_params(32, 4, 8, 64)
    8192
    """
    return attention_params(d, H, d_h) + mlp_params(d, m)


def bits_facts_loss_aware(S: int, R: int, D: int, loss: float) -> float:
    """Bits a model with mean cross-entropy ``loss`` (nats) over the S·R facts provably stores (§5).

    S·R·(log2 D − L/ln 2), floored at 0: a model that knows each relation's block but nothing else has
    L = ln D and stores nothing; L = 0 stores the full S·R·log2 D.

    >>> bits_facts_loss_aware(32, 32, 8, 0.0), bits_facts_loss_aware(32, 32, 8, math.log(8))
    (3072.0, 0.0)
    """
    if D <= 1:
        return 0.0
    return max(0.0, S * R * (math.log2(D) - loss / math.log(2)))


def guide_frontier_mlp(attention: float) -> float:
    """The paper's trained frontier of Figure 4 right (d = 32, S = R = 32, D = 8): the MLP parameters d·m
    needed beside ``attention`` = d·d_h·H attention parameters, 2300 − attention/2 (works on arrays too).

    >>> guide_frontier_mlp(600.0)
    2000.0
    """
    at_zero, slope = PAPER["tradeoff_frontier_mlp_at_zero_attention"], PAPER["tradeoff_frontier_slope"]
    return at_zero.value - slope.value * attention
