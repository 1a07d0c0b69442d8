"""Benchmark: the Figure 5 trajectory, ours vs a naive loop, side by side in one run.

Ours: factrecall.dynamics.trajectory.trajectory (the simplified model of factrecall.dynamics.simplified:
sequences as token counts, sampled inside a compiled lax.scan of 64 gradient steps followed by an
evaluation on the fixed 2^14-sequence test set; one host sync per 16 evaluations).

Naive (written here, the way the paper's code works): sequences as (B, T) tokens with positions, embedded
one-hot into (B, T, d), x_T-attention computed over all T positions; a Python loop calls a jitted step on a
batch sampled on the host by NumPy, and evaluates on the test set every 64 steps (a device→host sync each
time). Same model (Eq. 15), init 1e-5, lr, batch and test-set size.

Usage: python benchmarks/bench_dynamics.py [--steps 2048] [--lr 0.4]
Prints one table: wall time of each, the ratio naive/ours, and both final losses (they must agree to ~10%).
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from factrecall.core.engine import compile_seconds  # noqa: E402
from factrecall.core.provenance import device  # noqa: E402
from factrecall.dynamics.spec import DynamicsSpec  # noqa: E402
from factrecall.dynamics.trajectory import trajectory  # noqa: E402


def naive_tokens(rng: np.random.Generator, B: int, S: int, R: int, n_noise: int, T: int) -> tuple:
    """B sequences on the host: noise everywhere, subject and relation at distinct positions, EOS last."""
    tokens = rng.integers(S + R, S + R + n_noise, size=(B, T))
    s, r = rng.integers(0, S, B), rng.integers(0, R, B)
    for b in range(B):
        i, j = rng.choice(T - 1, 2, replace=False)
        tokens[b, i], tokens[b, j] = s[b], S + r[b]
    tokens[:, -1] = S + R + n_noise
    return tokens, s, r


def naive_run(spec: DynamicsSpec) -> float:
    S, R, D, T = spec.S, spec.R, spec.D, spec.T
    n_noise = S + R
    vocab = S + R + n_noise + 1
    facts = (np.arange(S)[:, None] * D) // S + D * np.arange(R)[None, :]
    params = {"A": jnp.full((vocab, vocab), spec.init), "V": jnp.full((vocab, R * D), spec.init)}

    def loss(p, tokens, labels):
        x = jax.nn.one_hot(tokens, vocab)  # (B, T, d)
        scores = jnp.einsum("bd,de,bte->bt", x[:, -1], p["A"], x)
        logits = jnp.einsum("bt,btd,dn->bn", scores, x, p["V"])
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(len(labels)), labels])

    @jax.jit
    def step(p, tokens, labels):
        g = jax.grad(loss)(p, tokens, labels)
        return jax.tree.map(lambda w, gw: w - spec.lr * gw, p, g)

    evaluate = jax.jit(loss)
    rng = np.random.default_rng(0)
    test, ts, tr = naive_tokens(rng, spec.n_test, S, R, n_noise, T)
    test_labels = facts[ts, tr]
    last = float("nan")
    for i in range(spec.n_steps):
        tokens, s, r = naive_tokens(rng, spec.B, S, R, n_noise, T)
        params = step(params, tokens, facts[s, r])
        if (i + 1) % spec.eval_every == 0:
            last = float(evaluate(params, test, test_labels))
    return last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2048)
    parser.add_argument("--lr", type=float, default=0.4)
    args = parser.parse_args()
    spec = DynamicsSpec(lr=args.lr, n_steps=args.steps)
    c0, start = compile_seconds(), time.perf_counter()
    ours = float(trajectory(spec).curves["loss"][-1])
    t_ours, c_ours = time.perf_counter() - start, compile_seconds() - c0
    c0, start = compile_seconds(), time.perf_counter()
    naive = naive_run(spec)
    t_naive, c_naive = time.perf_counter() - start, compile_seconds() - c0
    print(f"device: {device()}; S=16, R=4, D=8, batch 1024, lr {args.lr}, {args.steps} steps, test set 2^14")
    print(
        "| ours (s) | of which compile | naive (s) | of which compile | naive/ours | loss ours | loss naive |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {t_ours:.1f} | {c_ours:.1f} | {t_naive:.1f} | {c_naive:.1f} | {t_naive / t_ours:.1f} "
        f"| {ours:.4f} | {naive:.4f} |"
    )


if __name__ == "__main__":
    main()
