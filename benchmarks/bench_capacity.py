"""Benchmark: the linear-memory capacity search, ours vs a naive baseline, side by side in one run.

Ours: factrecall.memories.capacity (all seeds × learning rates of a round as one compiled, vmapped
program; the stop-at-criterion check inside the program; bracketing from a guess, then geometric
bisection).

Naive (written here, the way the paper's code works): one run at a time, a Python loop calling a jitted
Adam step, an accuracy check every 32 steps (a device→host sync), plain bisection on [d, d²] per seed and
learning rate. Both solve the same problems: same embeddings (factrecall.memories.trials.memory_data with
the same keys), same init, same learning-rate grid, 4096 steps, criterion 0.99.

Usage: python benchmarks/bench_capacity.py [--d 16 32] [--seeds 3]
Prints one table: wall time of each, the ratio naive/ours, and both N* per seed (must agree within 10%).
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from _baselines import plain_bisection  # noqa: E402

from factrecall.core.provenance import device  # noqa: E402
from factrecall.memories.capacity import capacity  # noqa: E402
from factrecall.memories.models import linear_memory  # noqa: E402
from factrecall.memories.spec import LINEAR_LRS, LINEAR_STEPS, recipe  # noqa: E402
from factrecall.memories.trials import memory_data  # noqa: E402


def naive_stored(d: int, N: int, seed: int, lr: float, criterion: float = 0.99) -> bool:
    """One training run, step by step from Python, accuracy checked every 32 steps."""
    key = jax.random.fold_in(jax.random.key(seed), N)
    data = memory_data(N, N, N, N, d, key=jax.random.fold_in(key, 0))
    W = linear_memory(d).init(jax.random.fold_in(key, 1))["W"]
    opt = optax.adam(lr)
    state = opt.init(W)
    labels = jnp.arange(N)

    @jax.jit
    def step(W, state):
        def loss(W):
            logits = data.E @ W.T @ data.U.T
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        grads = jax.grad(loss)(W)
        updates, state = opt.update(grads, state)
        return optax.apply_updates(W, updates), state

    @jax.jit
    def acc(W):
        return jnp.mean(jnp.argmax(data.E @ W.T @ data.U.T, axis=1) == labels)

    for t in range(LINEAR_STEPS):
        W, state = step(W, state)
        if (t + 1) % 32 == 0 and float(acc(W)) >= criterion:
            return True
    return False


def naive_capacity(d: int, seed: int) -> int:
    """Plain bisection on [d, d²] (the floor d is assumed stored, as in the paper's code)."""
    return plain_bisection(d, d * d, lambda N: any(naive_stored(d, N, seed, lr) for lr in LINEAR_LRS))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = tuple(range(args.seeds))
    print(f"device: {device()}; linear memory, criterion 0.99, lrs {LINEAR_LRS}, {LINEAR_STEPS} steps")
    print(
        f"{'d':>4} {'ours s':>8} {'naive s':>8} {'naive/ours':>10}  "
        f"{'N* ours':>16} {'N* naive':>16} {'agree':>6}"
    )
    for d in args.d:
        capacity(recipe("linear", 4), seeds=(0,))  # warm up JAX itself, not our programs
        t0 = time.perf_counter()
        ours = capacity(recipe("linear", d), seeds=seeds).capacity_per_seed
        t_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        naive = tuple(naive_capacity(d, s) for s in seeds)
        t_naive = time.perf_counter() - t0
        agree = abs(statistics.median(ours) - statistics.median(naive)) <= 0.1 * statistics.median(naive)
        print(
            f"{d:>4} {t_ours:>8.1f} {t_naive:>8.1f} {t_naive / t_ours:>10.1f}  "
            f"{list(ours)!s:>16} {list(naive)!s:>16} {'yes' if agree else 'NO':>6}"
        )


if __name__ == "__main__":
    main()
