"""A one-layer transformer written down by hand (no gradients) that stores every fact of a recall task.

``construct_transformer`` returns the same params pytree as :func:`factrecall.recall.transformer.init`, so the
evaluator of trained models scores it. Every memory inside is a least-squares (pseudo-inverse) map; the
Hebbian sum is kept as an option for comparison.

Paper: §4 (facts in the attention values; facts in the MLP; the hybrid between them); SPEC §4.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from factrecall.core.base import Array, Int, Key, Params
from factrecall.core.errors import check
from factrecall.recall.task import RecallTask, every_fact
from factrecall.recall.transformer import TransformerConfig, init

MECHANISMS: tuple[str, ...] = ("attention", "mlp", "hybrid")
MEMORIES: tuple[str, ...] = ("pinv", "hebbian")
GATE = 8.0  # how far (in units of the pre-activation scale) the gate pushes the MLP off for attention facts


def construct_transformer(
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Int[Array, "S R"],
    mechanism: str = "attention",
    *,
    attention_share: float | None = None,
    memory: str = "pinv",
    beta: float = 8.0,
    c: float = 1.0,
    n_fit_contexts: int | None = None,
    key: Key,
) -> Params:
    """A one-layer transformer whose weights store every fact a*(s, r), written down without gradients.

    Returns the same parameter dict as :func:`factrecall.recall.transformer.init` (its embeddings drawn from
    ``key`` exactly as ``init`` draws them), so :func:`factrecall.recall.training.score_facts` evaluates
    constructed and trained models alike. Every head attends alike: Q_h reads the EOS query and K_h holds
    β·√d_h·κ with e_t·κ = 1 on subject and relation tokens and 0 on noise and EOS (least squares: exact
    once d ≥ vocab), so the last position averages the subject and the relation, x̄ ≈ (e_s + e_r)/2. Then:

    * ``attention`` (no MLP): W_OV = Σ_h V_h O_h (rank ≤ H·d_h) maps e_s to the residual vector whose
      logits are L_s (1 on each of the subject's answers a*(s, r')) and e_r to c on relation r's block, so
      U·W_OVᵀ x̄ peaks at a*(s, r): the relation picks the block, the subject the answer inside it.
    * ``mlp``: W_OV copies e_s and e_r; W1 is random (columns on the sphere, b1 = 0) and W2 the read-out
      from the features relu(W1ᵀ h) of every pair (s, r) to its answer.
    * ``hybrid``: the first ``attention_share``·R relations are stored as in ``attention``, the others as in
      ``mlp``; relations stored by attention also write a gate direction g that drives every MLP unit
      below 0, so the MLP is silent on the attention's facts and spends its width on its own.

    Memories are pseudo-inverse (least-squares) by default: a Hebbian sum Σ_x y_x e_xᵀ decodes with
    cross-talk noise ≈ √(N/d) from every other stored item, while the least-squares map X⁺Y (reduced rank
    when H·d_h is smaller) cancels the cross-talk among stored items exactly when they fit and minimises it
    otherwise, so it stores the same facts with several times fewer parameters (README, "Constructions").
    ``memory="hebbian"`` builds the outer-product sums instead, for comparison. Last, the outputs are scaled
    by the γ minimising the cross-entropy of the fitting contexts (argmax unchanged; the loss, and with it
    the loss-aware bit bound, become meaningful).

    Args:
        cfg: model shape; ``cfg.vocab``/``cfg.n_out`` must match ``task``; ``mlp``/``hybrid`` need m ≥ 1.
        task: the recall task (with EOS).
        facts: a*(s, r), shape (S, R).
        mechanism: ``attention``, ``mlp`` or ``hybrid``.
        attention_share: fraction of relations stored by attention (``hybrid``; default 0.5).
        memory: ``pinv`` (least squares) or ``hebbian`` (outer products).
        beta: attention inverse temperature on the selected tokens.
        c: relation-block weight of the attention-values memory (c > 0).
        n_fit_contexts: random contexts per fact on which the MLP read-out and γ are fitted (default:
            enough for 2·m sequences, at least 2, so that the read-out cannot interpolate context noise).
        key: draws the embeddings (as ``init``), W1 and the fitting contexts.

    Raises:
        ConfigError: mismatched sizes, unknown mechanism or memory, m = 0 for ``mlp``/``hybrid``.

    Paper: §4 (the constructions behind Theorems 3–4); SPEC §4.

    >>> from factrecall.recall.task import recall_task, facts_random
    >>> task = recall_task(4, 2, 2, T=6)
    >>> cfg = TransformerConfig(d=16, H=2, d_h=8, m=0, vocab=task.vocab, n_out=task.n_answers)
    >>> facts = facts_random(task, key=jax.random.key(1))
    >>> params = construct_transformer(cfg, task, facts, key=jax.random.key(0))
    >>> params["V"].shape, params["O"].shape
    ((2, 16, 8), (16, 16))
    """
    share = _share(mechanism, attention_share)
    if n_fit_contexts is None:
        n_fit_contexts = max(2, math.ceil(2 * cfg.m / task.n_facts))
    _check_construction(cfg, task, facts, mechanism, memory, share, c, n_fit_contexts)
    params = {k: np.asarray(v, np.float64) for k, v in _init(cfg, key).items()}
    E, U, F = params["wte"], params["unembed"], np.asarray(facts)
    n_A = round(share * task.R)  # relations [0, n_A) are stored by attention
    kappa = _selection(E, task, memory)
    params["Q"], params["K"] = _query_key(E[task.eos_id], kappa, beta, cfg)
    # the gate: the residual direction the logits see least (only when both attention and MLP store facts)
    g = np.linalg.svd(U)[2][-1] if cfg.m and 0 < n_A < task.R else None
    X, Y = _value_targets(E, U, task, F, n_A, g, c)
    W_OV = _reduced_rank(X, Y, _metric(U, n_A < task.R), cfg, memory)
    params["V"], params["O"] = _split_heads(W_OV, cfg)
    tokens = np.asarray(_contexts(task, facts, n_fit_contexts, jax.random.fold_in(key, 11)))
    h = _attend(E, tokens, kappa, beta) @ W_OV
    target = np.tile(np.eye(task.n_answers)[F.reshape(-1)] - 1 / task.n_answers, (n_fit_contexts, 1))
    if mechanism != "attention":
        mine = np.tile(np.repeat([np.arange(task.R) >= n_A], task.S, axis=0).reshape(-1), n_fit_contexts)
        W1, b1, W2 = _mlp_memory(h, np.where(mine[:, None], target - h @ U.T, 0.0), U, cfg.m, g, memory, key)
        params["W1"], params["b1"], params["W2"] = W1, b1, W2
    else:
        params["W1"], params["b1"], params["W2"] = (np.zeros_like(params[k]) for k in ("W1", "b1", "W2"))
    gamma = _logit_scale(_fit_logits(params, h), target.argmax(axis=1))
    params["O"], params["b1"] = params["O"] * gamma, params["b1"] * gamma  # relu is 1-homogeneous
    return {k: jax.device_put(v.astype(np.float32)) for k, v in params.items()}  # no per-shape compile


# Eager JAX would compile every small op anew for each shape; one program per shape is much cheaper.
_init = jax.jit(lambda cfg, key: init(cfg, key=key), static_argnums=0)
_contexts = jax.jit(
    lambda task, facts, n, key: every_fact(task, facts, n, key=key).tokens, static_argnums=(0, 2)
)


def _share(mechanism: str, attention_share: float | None) -> float:
    if mechanism == "hybrid":
        return 0.5 if attention_share is None else attention_share
    check(attention_share is None, f"attention_share is for mechanism 'hybrid', not {mechanism!r}")
    return 1.0 if mechanism == "attention" else 0.0


def _check_construction(
    cfg: TransformerConfig,
    task: RecallTask,
    facts: Array,
    mechanism: str,
    memory: str,
    share: float,
    c: float,
    n_fit: int,
) -> None:
    check(
        mechanism in MECHANISMS, f"unknown mechanism {mechanism!r}; expected one of {', '.join(MECHANISMS)}"
    )
    check(memory in MEMORIES, f"unknown memory {memory!r}; expected one of {', '.join(MEMORIES)}")
    check(task.eos, "constructions need the EOS query (task.eos=True): the query must not depend on the fact")
    check(
        cfg.vocab == task.vocab and cfg.n_out == task.n_answers,
        f"cfg has vocab={cfg.vocab}, n_out={cfg.n_out} but the task has vocab={task.vocab}, "
        f"n_answers={task.n_answers}; build cfg from the task",
    )
    check(
        tuple(facts.shape) == (task.S, task.R),
        f"facts must have shape (S, R) = ({task.S}, {task.R}), got {tuple(facts.shape)}",
    )
    check(
        mechanism == "attention" or cfg.m >= 1,
        f"mechanism {mechanism!r} needs an MLP: width m ≥ 1, got m={cfg.m}",
    )
    check(0.0 <= share <= 1.0, f"attention_share must be in [0, 1], got {share}")
    check(c > 0, f"relation weight c must be > 0, got c={c}")
    check(n_fit >= 1, f"n_fit_contexts must be ≥ 1, got {n_fit}")


def _selection(E: np.ndarray, task: RecallTask, memory: str) -> np.ndarray:
    """κ ∈ R^d with e_t·κ ≈ 1 on subject and relation tokens and ≈ 0 on noise and EOS."""
    target = (np.arange(task.vocab) < task.S + task.R).astype(np.float64)
    if memory == "hebbian":
        return E.T @ target / np.mean(np.sum(E[target > 0] ** 2, axis=1))
    return np.linalg.pinv(E) @ target


def _query_key(
    e_eos: np.ndarray, kappa: np.ndarray, beta: float, cfg: TransformerConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Q, K (H, d, d_h) with x_tᵀ K_h Q_hᵀ e_EOS / √d_h = β·x_t·κ in every head (one used column)."""
    Q = np.zeros((cfg.H, cfg.d, cfg.d_h))
    K = np.zeros((cfg.H, cfg.d, cfg.d_h))
    Q[:, :, 0] = e_eos / np.sum(e_eos**2)
    K[:, :, 0] = beta * math.sqrt(cfg.d_h) * kappa
    return Q, K


def _fact_logits(task: RecallTask, facts: np.ndarray, n_A: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Logit targets of the attention-values memory over relations [0, n_A): L_s (S, R·D), L_r (n_A, R·D).

    L_s is 1 on the subject's answers a*(s, r'), L_r is c on relation r's block; both are centred within
    the blocks, so L_s + L_r peaks at a*(s, r) with margin 1 inside the block and c against the others.
    """
    S, R, D = task.S, task.R, task.D
    L_s = np.zeros((S, R * D))
    L_s[np.repeat(np.arange(S), R), facts.reshape(-1)] = 1.0
    L_s -= 1.0 / D
    L_r = np.kron(np.eye(R), np.ones((1, D)))[:n_A] * c
    L_r -= L_r[:, : n_A * D].mean(axis=1, keepdims=True)
    L_s[:, n_A * D :], L_r[:, n_A * D :] = 0.0, 0.0
    return L_s, L_r


def _value_targets(
    E: np.ndarray,
    U: np.ndarray,
    task: RecallTask,
    facts: np.ndarray,
    n_A: int,
    gate: np.ndarray | None,
    c: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs X (vocab, d) and residual targets Y (vocab, d) of the value/output memory, one row per token.

    Subjects and relations of the attention's facts map to U⁺(2·L) (the attention splits its weight between
    the two tokens), plus the gate −g for those relations when an MLP exists; every subject and the MLP's
    relations also keep a copy of their embedding (what the MLP reads); noise and EOS map to 0.
    """
    Y = np.zeros_like(E)
    S, R = task.S, task.R
    if n_A:
        L_s, L_r = _fact_logits(task, facts, n_A, c)
        U_pinv = np.linalg.pinv(U)
        Y[:S] += 2 * L_s @ U_pinv.T
        Y[S : S + n_A] += 2 * L_r @ U_pinv.T
    if n_A < R:
        Y[: S + R] += E[: S + R]
        if gate is not None:  # g is reserved for the gate; the logits see it least, so it costs least
            Y -= np.outer(Y @ gate, gate)
            Y[S : S + n_A] -= gate
    return E, Y


def _reduced_rank(
    X: np.ndarray, Y: np.ndarray, Z: np.ndarray, cfg: TransformerConfig, memory: str
) -> np.ndarray:
    """The d×d map A of rank ≤ k = min(H·d_h, d) with X A ≈ Y in the metric ‖(X A − Y) Z‖.

    The rank-k least-squares solution is exact (reduced-rank regression): with X = P S Wᵀ (thin SVD) and Z
    invertible, A = W S⁻¹ [Pᵀ Y Z]_k Z⁻¹, [·]_k the truncated SVD. ``hebbian``: Xᵀ Y, truncated alike.
    """
    k = min(cfg.H * cfg.d_h, cfg.d)
    if memory == "hebbian":
        A = X.T @ Y / np.mean(np.sum(X[np.any(Y != 0, axis=1)] ** 2, axis=1))
        return _truncate(A @ Z, k) @ np.linalg.inv(Z)
    P, S, Wt = np.linalg.svd(X, full_matrices=False)
    keep = S > 1e-10 * S[0]
    return (Wt[keep].T / S[keep]) @ _truncate(P[:, keep].T @ Y @ Z, k) @ np.linalg.inv(Z)


def _metric(U: np.ndarray, residual: bool) -> np.ndarray:
    """Z with ZZᵀ = UᵀU (errors measured in logits), + mean eigenvalue·I when the MLP reads the residual."""
    _, S, Wt = np.linalg.svd(U)  # Wt is d×d; directions U cannot see (d > R·D) get a tiny weight
    ev = np.zeros(U.shape[1])
    ev[: len(S)] = S**2
    ev += np.mean(S**2) * (1.0 if residual else 1e-6)
    return Wt.T * np.sqrt(ev)


def _truncate(B: np.ndarray, k: int) -> np.ndarray:
    """Best rank-k approximation of B (truncated SVD)."""
    if k >= min(B.shape):
        return B
    P, S, Wt = np.linalg.svd(B, full_matrices=False)
    return (P[:, :k] * S[:k]) @ Wt[:k]


def _split_heads(W_OV: np.ndarray, cfg: TransformerConfig) -> tuple[np.ndarray, np.ndarray]:
    """V (H, d, d_h) and O (H·d_h, d) with Σ_h V_h O_h = W_OV (rank ≤ H·d_h), split by SVD."""
    k = min(cfg.H * cfg.d_h, cfg.d)
    P, S, Wt = np.linalg.svd(W_OV)
    Vc = np.zeros((cfg.d, cfg.H * cfg.d_h))
    O = np.zeros((cfg.H * cfg.d_h, cfg.d))
    root = np.sqrt(S[:k])
    Vc[:, :k], O[:k] = P[:, :k] * root, root[:, None] * Wt[:k]
    return Vc.reshape(cfg.d, cfg.H, cfg.d_h).transpose(1, 0, 2), O


def _attend(E: np.ndarray, tokens: np.ndarray, kappa: np.ndarray, beta: float) -> np.ndarray:
    """x̄ = Σ_t a_t x_t per sequence with a = softmax(β·x_t·κ) (every head attends alike).

    Computed per vocabulary entry, not per position: the scores are (E κ)[tokens], and x̄ = A E where A
    (B, vocab) sums each sequence's attention weights by token — no (B, T, d) gather.
    """
    s = beta * (E @ kappa)[tokens]
    a = np.exp(s - s.max(axis=1, keepdims=True))
    a /= a.sum(axis=1, keepdims=True)
    A = np.zeros((tokens.shape[0], E.shape[0]))
    np.add.at(A, (np.arange(tokens.shape[0])[:, None], tokens), a)
    return A @ E


def _mlp_memory(
    h: np.ndarray, target: np.ndarray, U: np.ndarray, m: int, gate: np.ndarray | None, memory: str, key: Key
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W1 (d, m), b1 = 0 and W2 (m, d) with relu(h W1 + b1) W2 Uᵀ ≈ target (least squares in logits).

    W1's columns are random on the sphere orthogonal to the gate g, plus a component along g large enough
    that a token writing −g (the attention's relations) silences every unit.
    """
    d = h.shape[1]
    seed = [int(x) for x in np.asarray(jax.random.key_data(jax.random.fold_in(key, 12)))]
    W1 = np.random.default_rng(seed).standard_normal((d, m))  # NumPy: no compilation per shape
    W1 /= np.linalg.norm(W1, axis=0)
    if gate is not None:
        W1 -= np.outer(gate, gate @ W1)
        W1 += np.outer(gate, np.full(m, 2 * GATE * (h @ W1).std()))
    phi = np.maximum(h @ W1, 0.0)
    if memory == "hebbian":
        W2 = (phi - phi.mean(axis=0)).T @ target @ U / np.sum(U**2, axis=1).mean()
        return W1, np.zeros(m), W2 / max(len(h), 1) * m
    P, S, Wt = np.linalg.svd(phi, full_matrices=False)
    keep = S > 1e-10 * S[0]
    W2 = (Wt[keep].T / S[keep]) @ (P[:, keep].T @ target) @ np.linalg.pinv(U).T
    return W1, np.zeros(m), W2


def _fit_logits(params: dict[str, np.ndarray], h: np.ndarray) -> np.ndarray:
    """Logits of the fitting contexts from their attention outputs h (NumPy mirror of ``forward``)."""
    y = h + np.maximum(h @ params["W1"] + params["b1"], 0.0) @ params["W2"]
    return y @ params["unembed"].T


def _logit_scale(logits: np.ndarray, labels: np.ndarray) -> float:
    """The γ > 0 minimising the mean cross-entropy of γ·logits (golden-section search on log γ)."""

    def loss(log_gamma: float) -> float:
        z = logits * math.exp(log_gamma)
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(z)), labels]))

    lo, hi = math.log(1e-2), math.log(1e4)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(28):  # log γ to ≈ 1e-5; one new evaluation per step (the kept inner point is reused)
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return math.exp((lo + hi) / 2)
