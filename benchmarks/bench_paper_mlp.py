"""Benchmark: the MLP-memory capacity of the paper's own procedure vs ours, on the same problems, in one run.

The MLP capacity targets (N* ≥ 43, 65, 166, 284 at d = 8, 11, 16, 22, α = m/d = 1) are what the authors' code
reached on their machine. This script ports their procedure (from the description of their public sweep
script) and runs it here next to ours, so the two recipes are compared on this machine and on identical
problems rather than against numbers from another machine's float arithmetic.

Paper's procedure (ported here, one run at a time on one device):
    model F(e) = W2ᵀ relu(W1ᵀ e + b1) with LeCun-normal (truncated) init, b1 = 0, as flax's Dense layers;
    loss mean −log(softmax(u · F(e)))[f*(e)] (their unstabilised form: a non-finite run counts as failed);
    Adam, constant learning rate 3e-2, 2^15 steps, accuracy checked every 256 steps, the run stops as soon as
    the accuracy exceeds 0.99 and its result is its best checked accuracy; plain bisection of N on
    [d, α·d²] (the floor d is never tested), one learning rate, stop when hi/lo ≤ 1.01 or hi − lo ≤ 1.
Ours: factrecall.memories.capacity with the default MLP recipe (the work queue, Adam with a cosine decay
    over 32,768 steps, grid {0.03, 0.1, 0.3}, accuracy every 128 steps, patience below the criterion).
Both draw trial (seed, N)'s embeddings from factrecall.memories.trials.trial_data and its initial-weight
key from trials.trial_key, so a given (seed, N) is the same problem for both; the two bisections visit
different N.

Usage: python benchmarks/bench_paper_mlp.py [--d 8 11 16 22] [--seeds 9]
Prints one table per d: N* of each seed and the medians, and the wall time of each procedure (the paper's
procedure trains one run at a time: it is expected to be slower; the ratio is printed too).
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import functools  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from _baselines import plain_bisection  # noqa: E402

from factrecall.core.provenance import device  # noqa: E402
from factrecall.memories.capacity import capacity  # noqa: E402
from factrecall.memories.spec import recipe  # noqa: E402
from factrecall.memories.trials import trial_data, trial_key  # noqa: E402

PAPER_LR = 3e-2
PAPER_STEPS = 2**15
PAPER_EVAL_EVERY = PAPER_STEPS // 128
PAPER_CRITERION = 0.99


def paper_init(key: jax.Array, d: int, m: int) -> dict[str, jax.Array]:
    """flax.linen.Dense's defaults: LeCun-normal (truncated normal, variance 1/fan_in) kernels, zero bias."""
    k1, k2 = jax.random.split(key)
    init = jax.nn.initializers.lecun_normal()
    return {"W1": init(k1, (d, m)), "b1": jnp.zeros((m,)), "W2": init(k2, (m, d))}


@functools.cache
def _trainer(d: int, m: int, N: int):
    """A jitted block of PAPER_EVAL_EVERY Adam steps followed by an accuracy check (one run of size N)."""
    opt = optax.adam(PAPER_LR)
    labels = jnp.arange(N)

    def scores(p, E, U):
        return (jax.nn.relu(E @ p["W1"] + p["b1"]) @ p["W2"]) @ U.T

    def loss(p, E, U):
        probs = jax.nn.softmax(scores(p, E, U), axis=-1)
        return -jnp.mean(jnp.log(probs[labels, labels]))

    def block(p, s, E, U):
        def step(carry, _):
            p, s = carry
            value, grads = jax.value_and_grad(loss)(p, E, U)
            updates, s = opt.update(grads, s, p)
            return (optax.apply_updates(p, updates), s), value

        (p, s), losses = jax.lax.scan(step, (p, s), None, length=PAPER_EVAL_EVERY)
        acc = jnp.mean(jnp.argmax(scores(p, E, U), axis=-1) == labels)
        return p, s, acc, jnp.all(jnp.isfinite(losses))

    return opt, jax.jit(block)


def paper_stored(d: int, m: int, N: int, seed: int) -> bool:
    """One run of the paper's recipe on trial (seed, N): its best checked accuracy reaches 0.99."""
    data = trial_data(recipe("mlp", d, m), N, seed, N)
    E, U = data.E, data.U
    p = paper_init(jax.random.fold_in(trial_key(seed, N), 1), d, m)
    opt, block = _trainer(d, m, N)
    s = opt.init(p)
    best = 0.0
    for _ in range(PAPER_STEPS // PAPER_EVAL_EVERY):
        p, s, acc, finite = block(p, s, E, U)
        if not bool(finite):
            return False
        best = max(best, float(acc))
        if best > PAPER_CRITERION:
            break
    return best >= PAPER_CRITERION


def paper_capacity(d: int, alpha: int, seed: int) -> int:
    """The paper's bisection on [d, α·d²]; its floor d is assumed stored (never tested)."""
    return plain_bisection(d, alpha * d * d, lambda N: paper_stored(d, alpha * d, N, seed))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, nargs="+", default=[8, 11, 16, 22])
    parser.add_argument("--seeds", type=int, default=9)
    args = parser.parse_args()
    seeds = tuple(range(args.seeds))
    print(f"device: {device()}; MLP memory, α = m/d = 1, M = N, criterion 0.99, seeds {seeds[0]}–{seeds[-1]}")
    print("| d | procedure | N* per seed | median | min–max | seconds |")
    print("|---|---|---|---|---|---|")
    for d in args.d:
        start = time.perf_counter()
        paper = [paper_capacity(d, 1, s) for s in seeds]
        t_paper = time.perf_counter() - start
        ours = capacity(recipe("mlp", d, d), seeds)
        for name, per_seed, seconds in (
            ("paper's (lr 3e-2, constant)", paper, t_paper),
            ("ours (default recipe)", list(ours.capacity_per_seed), ours.seconds),
        ):
            print(
                f"| {d} | {name} | {', '.join(map(str, per_seed))} | {statistics.median(per_seed):g} | "
                f"{min(per_seed)}–{max(per_seed)} | {seconds:.1f} |"
            )
        print(f"| {d} | time paper's / ours | | | | {t_paper / ours.seconds:.1f} |")


if __name__ == "__main__":
    main()
