"""Benchmark: the paper's Figure 4 capacity procedure next to ours, on the same problems, in one run.

Figure 4's capacities (facts ≈ 0.15·params) come from the authors' own search. This script ports that search
(their public code, eshnich/factual-recall-iclr: ``run.py``'s ``run`` and ``binary_sweep``, called by
``fact_recall_sweep.py``) and runs it on this machine beside ours, on identical problems.

Paper's procedure (ported; trained by our engine):
    per shape and seed, bisection on the size k (S = R = k, D = 8): while hi − lo > 1 test k = ⌊(lo + hi)/2⌋;
    lo is assumed stored and hi assumed failing (neither tested). Their script starts at [8, 512] for d = 8
    and takes the previous d's result as the next floor; here the bounds are ``--bounds`` (default [1, 64]:
    one fact is always stored and 64² facts are ≥ 8× the guide's at every quick shape, so nothing is assumed
    that was not so). At each k the rates 1e-3, 3e-3, 1e-2 are tried in order and the first that stores is
    accepted (the next is tried only when the previous failed). A run: Adam (their AdamW, weight decay 0),
    batch 1024, ≤ 2^14 steps, accuracy on 1,024 test sequences sampled once per trial, checked every 128
    steps, stopped once > 0.99 (on 1,024 sequences the same as ≥ 0.99); stored when its best accuracy ≥ 0.99.
    Trained by factrecall.core.engine.train_many on padded.padded_problem(cfg, bucket, batch, ·, "sampled")
    in exactly-sized buckets; a shape's searches advance in lockstep and the seeds at the same (k, rate)
    train as one vmapped program.
Ours: factrecall.recall.capacity.capacity with the defaults of ``factrecall capacity transformer`` (the work
    queue, the whole rate grid at once, patience 2048, the criterion over every fact in 2 contexts), and the
    same with criterion_on = "sampled" (the paper's criterion); ``--ours`` picks among these and
    ``no-early-stops`` (no stall rule, no race, no patience: a run stops at the criterion or its budget).
Same problems: a trial (seed, S, R, D) draws its embeddings, fact table and evaluation key from
    padded.trial_data, its batches from padded.batch_key and its initial weights from padded.initial_weights
    in every procedure, so a given (seed, S = R = k) is the same problem; the searches visit different sizes
    (ours also tests S = R + 1).

Not ported into the search: the authors' flax initialisation (LeCun-normal MLP kernels), their unstabilised
−log softmax and their 2^24-sequence buffer. ``--to-99`` measures what each changes on the item-3 run
(d = 32, H = 4, d_h = 8, m = 64, S = R = 16, D = 8, lr 1e-2): steps to 99% per seed on the same problem and
initial weights, for our loop and the paper's, under both criteria.

Usage: python benchmarks/bench_paper_transformer.py [--shapes 0 1 2 3 4 5] (a process per shape) [--seeds 3]
[--first-seed 0] [--steps 16384] [--batch 1024] [--bounds 1 64]; python benchmarks/bench_paper_transformer.py
--to-99 [--seeds 6] [--steps 8192] [--variants 0 1 2 3 4 5]. The full recipe takes hours on 2 CPU cores (a
failing trial of the paper's is 3 × 16,384 steps); RESULTS.md says which recipe ran. Prints the load average
beside every wall time (the machine may be shared).

Paper: §4 and Figure 4 left; SPEC §3, §7.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import functools  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from factrecall.core.engine import (  # noqa: E402
    Problem,
    RunResult,
    Settings,
    compile_seconds,
    cross_entropy,
    train_many,
)
from factrecall.core.paper import PAPER_LRS  # noqa: E402
from factrecall.core.provenance import device  # noqa: E402
from factrecall.core.queue import stack  # noqa: E402
from factrecall.experiments.figures.transformer import fig4_points  # noqa: E402
from factrecall.experiments.specs import TransformerCapacityPoint  # noqa: E402
from factrecall.recall import capacity as tc  # noqa: E402
from factrecall.recall import padded  # noqa: E402
from factrecall.recall.paper_procedure import BOUNDS, paper_capacity, trial_inputs  # noqa: E402
from factrecall.recall.task import RecallTask  # noqa: E402
from factrecall.recall.training import logits_of  # noqa: E402
from factrecall.recall.transformer import TransformerConfig, param_counts  # noqa: E402

QUESTION = {"d": 32, "H": 4, "d_h": 8, "m": 64}  # the item-3 run: S = R = 16, D = 8, lr 1e-2
QUESTION_K, QUESTION_LR, QUESTION_CONTEXTS = 16, 1e-2, 4  # 4 contexts per fact: `factrecall train`'s


def load() -> str:
    return "load average {:.1f}, {:.1f}, {:.1f}".format(*os.getloadavg())


def quick_shapes() -> list[dict[str, int]]:
    """The 6 shapes of ``reproduce fig4 --scale quick`` (H = 8): d = 16 at four width ratios, d = 8, 24."""
    return [{k: p[k] for k in ("d", "H", "d_h", "m")} for p in fig4_points("quick")]


# our procedure's variants (--ours): the command's fields each sets
OURS = {
    "every-fact": {},
    "sampled": {"criterion_on": "sampled"},
    "no-early-stops": {"early_stops": False, "patience": 0},  # a run stops at the criterion or its budget
}


def spec_of(shape: dict[str, int], n_steps: int, batch: int, variant: str = "every-fact") -> tc.Spec:
    """``factrecall capacity transformer``'s spec of a shape (its defaults, D = 8), at a step budget/batch,
    with the fields of one of :data:`OURS`."""
    point = TransformerCapacityPoint(**shape, n_steps=n_steps, batch=batch, **OURS[variant])
    return point.spec


# --- the comparison table -------------------------------------------------------------------------------


def table_row(
    name: str, facts: list[int], trials: str, steps: float, seconds: float, compiling: float
) -> str:
    median = statistics.median(facts)
    return (
        f"| {name} | {', '.join(map(str, facts))} | **{median:g}** | {trials} | {steps:,.0f} | "
        f"{seconds:.0f} ({compiling:.0f}) |"
    )


def compare_shape(shape: dict[str, int], args: argparse.Namespace) -> None:
    """One shape: the paper's procedure, then each of ``args.ours``; one row each, then the time ratios."""
    seeds = tuple(range(args.first_seed, args.first_seed + args.seeds))
    spec = spec_of(shape, args.steps, args.batch)
    params = param_counts(tc.config_of(spec, tc.task_of(spec, 1))).paper
    print("\nd = {d}, d_h = {d_h}, m = {m} ({params} params); ".format(**shape, params=params) + load())
    print(
        "| procedure | N* = S·R per seed | median | trials | mean steps of a deciding run | s (compiling) |"
    )
    print("|---|---|---|---|---|---|")
    compiled = compile_seconds()
    paper = paper_capacity(spec, seeds, tuple(args.bounds), exact=True)  # one exact bucket per k
    trials = f"{len({(t.seed, t.k) for t in paper.runs})} ({len(paper.runs)} runs)"
    deciding = float(np.mean([t.steps for t in paper.runs if t.stored or t.lr == spec.lrs[-1]]))
    facts = [k * k for k in paper.k_per_seed]
    print(table_row("paper's", facts, trials, deciding, paper.seconds, compile_seconds() - compiled))
    seconds = {}
    for variant in args.ours:
        compiled = compile_seconds()
        ours = tc.capacity(spec_of(shape, args.steps, args.batch, variant), seeds)
        facts = ours.summary()["capacity_per_seed"]
        steps = float(np.mean([t.steps for t in ours.trials]))
        row = (f"ours ({variant})", facts, str(len(ours.trials)), steps, ours.seconds)
        print(table_row(*row, compile_seconds() - compiled), flush=True)
        seconds[variant] = ours.seconds
    ratios = ", ".join(f"{c} {s / paper.seconds:.2f}" for c, s in seconds.items())
    print(f"time ours / paper's: {ratios}; {load()}", flush=True)


# --- steps to 99% on the item-3 run ----------------------------------------------------------------------


def authors_sequence(pad: RecallTask, data: dict[str, Any], key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One sequence drawn as the authors' ``FactRecall.sample`` draws it (five subkeys, uniform p and q)."""
    k_s, k_loc, k_r, k_rloc, k_noise = jax.random.split(key, 5)
    s = jax.random.choice(k_s, pad.S, p=jnp.full((pad.S,), 1.0 / pad.S))
    loc = jax.random.choice(k_loc, pad.T - 1)
    r = jax.random.choice(k_r, pad.R, p=jnp.full((pad.R,), 1.0 / pad.R))
    r_loc = jax.random.choice(k_rloc, pad.T - 2)
    r_loc = r_loc + (r_loc >= loc)
    x = jax.random.choice(k_noise, jnp.arange(pad.S + pad.R, pad.S + pad.R + pad.n_noise), (pad.T,))
    x = x.at[loc].set(s).at[r_loc].set(pad.S + r).at[pad.T - 1].set(pad.eos_id)
    return x, data["facts"][s, r]


def _variant_loss(
    cfg: TransformerConfig, pad: RecallTask, batch: int, naive: bool, weights: Any, data: Any, key: jax.Array
) -> jax.Array:
    """The authors' sampler (per-sequence keys, as their buffer holds), and −log softmax when ``naive``."""
    tokens, labels = jax.vmap(functools.partial(authors_sequence, pad, data))(jax.random.split(key, batch))
    logits = logits_of({**weights, "wte": data["wte"], "unembed": data["unembed"]}, tokens, cfg)
    if not naive:
        return cross_entropy(logits, labels)
    probs = jax.nn.softmax(logits, axis=-1)
    return -jnp.mean(jnp.log(jnp.take_along_axis(probs, labels[:, None], axis=-1)))


def _both_criteria(cfg: TransformerConfig, pad: RecallTask, weights: Any, data: Any) -> dict[str, jax.Array]:
    """Both storage criteria; the monitored ``accuracy`` is their minimum: a run goes on until both hold."""
    sampled = padded.sampled_accuracy(cfg, pad, weights, data)
    every = padded.live_fact_accuracy(cfg, pad, QUESTION_CONTEXTS, weights, data)
    return {"accuracy": jnp.minimum(sampled, every), "sampled": sampled, "every_fact": every}


@functools.cache
def question_problem(cfg: TransformerConfig, pad: RecallTask, batch: int, sampler: str) -> Problem:
    """``ours`` (our in-step sampler, stable loss: the capacity problem's loss), ``authors`` (their sampler),
    ``authors-naive`` (their sampler and −log softmax); evaluated on both criteria."""
    if sampler == "ours":
        loss = padded.padded_problem(cfg, pad, batch, QUESTION_CONTEXTS, "sampled").loss
    else:
        loss = functools.partial(_variant_loss, cfg, pad, batch, sampler == "authors-naive")
    return Problem(loss=loss, evaluate=functools.partial(_both_criteria, cfg, pad), monitor="accuracy")


def redrawn_mlp(weights: dict[str, jax.Array], seed: int, distribution: str) -> dict[str, jax.Array]:
    """``weights`` with W1, W2 redrawn from fixed keys with variance 1/fan_in: ``truncated_normal`` is
    flax.linen.Dense's default (LeCun normal), the authors' model; ``normal`` is our distribution, drawn
    from the same keys (the control). Q, K, V ~ N(0, 1/d_h) and O ~ N(0, 1/d) are the authors' already."""
    k1, k2 = jax.random.split(jax.random.fold_in(jax.random.key(seed), 2))
    init = jax.nn.initializers.variance_scaling(1.0, "fan_in", distribution)
    return {**weights, "W1": init(k1, weights["W1"].shape), "W2": init(k2, weights["W2"].shape)}


def first_hit(curve: np.ndarray, every: int) -> float:
    """The first evaluated step (one value every ``every`` steps) with ``curve`` ≥ 0.99; inf if none."""
    hits = np.flatnonzero(np.asarray(curve) >= 0.99)
    return float((hits[0] + 1) * every) if hits.size else np.inf


def steps_row(name: str, out: RunResult, every: int, n_steps: int) -> str:
    """A table row: steps to 99% per seed and their median under both criteria (``>n_steps``: never)."""
    cells = []
    for metric in ("every_fact", "sampled"):
        hits = [first_hit(c[0], every) for c in out.curves[metric]]
        shown = [f"{h:g}" if h < np.inf else f">{n_steps}" for h in [*hits, statistics.median(hits)]]
        cells.append(f"{', '.join(shown[:-1])} | **{shown[-1]}**")
    return f"| {name} | {every} | {' | '.join(cells)} |"


VARIANTS = (  # name, MLP init (ours; normal / truncated_normal: redrawn), sampler and loss, evaluation period
    ("ours: our init, in-step sampler, stable loss", "ours", "ours", 64),
    ("ours, evaluated every 128 (the paper's period)", "ours", "ours", 128),
    ("+ the authors' sampler (per-sequence keys)", "ours", "authors", 128),
    ("+ W1, W2 redrawn from flax's keys, untruncated", "normal", "authors", 128),
    ("+ flax init (LeCun normal: truncated)", "truncated_normal", "authors", 128),
    ("+ −log softmax: the authors' run() whole", "truncated_normal", "authors-naive", 128),
)


def steps_to_99(args: argparse.Namespace) -> None:
    """Steps to 99% on the item-3 run, per seed, for our loop, the paper's and the variants between them."""
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    spec = spec_of(QUESTION, args.steps, args.batch)
    pad = padded.bucket(QUESTION_K, QUESTION_K, spec.D, spec.T)
    cfg = tc.config_of(spec, pad)
    ours_w, data, keys = trial_inputs(spec, pad, cfg, QUESTION_K, seeds)
    lrs = jnp.full((len(seeds), 1), QUESTION_LR)
    print(f"device: {device()}; item-3 run, seeds {seeds[0]}–{seeds[-1]}, batch {args.batch}, lr 1e-2")
    print(f"steps to 99% (first evaluation ≥ 0.99; budget {args.steps}); {load()}")
    header = "every fact (4 contexts), per seed | median | sampled 1,024 (the paper's), per seed | median"
    print(f"| variant | eval every | {header} | s |")
    print("|---|---|---|---|---|---|---|")
    for name, init, sampler, every in (VARIANTS[i] for i in args.variants):
        start = time.perf_counter()
        weights = ours_w
        if init != "ours":
            weights = stack([redrawn_mlp(padded.initial_weights(cfg, s), s, init) for s in seeds])
        problem = question_problem(cfg, pad, args.batch, sampler)
        out = train_many(problem, Settings(args.steps, every, 0.99), weights, data, lrs, keys)
        diverged = int(np.sum(out.diverged))
        note = f" ({diverged} diverged)" if diverged else ""
        seconds = time.perf_counter() - start
        print(f"{steps_row(name + note, out, every, args.steps)} {seconds:.0f} |", flush=True)
    print(load())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shapes", type=int, nargs="+", default=list(range(6)), help="quick shapes, by index"
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0…n−1 (default 3; --to-99: 6)")
    parser.add_argument("--steps", type=int, default=None, help="step budget (default 16384; --to-99: 8192)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--variants", type=int, nargs="+", default=list(range(len(VARIANTS))), help="--to-99")
    parser.add_argument("--bounds", type=int, nargs=2, default=list(BOUNDS), help="the paper's lo, hi")
    parser.add_argument("--to-99", action="store_true", help="steps to 99%% on the item-3 run instead")
    parser.add_argument(
        "--ours", nargs="+", choices=list(OURS), default=["every-fact", "sampled"], help="our variants to run"
    )
    parser.add_argument("--no-header", action="store_true", help=argparse.SUPPRESS)  # a shape's own process
    args = parser.parse_args()
    if args.to_99:
        args.seeds, args.steps = args.seeds or 6, args.steps or 8192
        steps_to_99(args)
        return
    args.seeds, args.steps = args.seeds or 3, args.steps or 16384
    if not args.no_header:
        header(args)
    if len(args.shapes) > 1:  # one process per shape (see in_own_processes)
        in_own_processes(args)
    else:
        compare_shape(quick_shapes()[args.shapes[0]], args)


def header(args: argparse.Namespace) -> None:
    lo, hi = args.bounds
    last = args.first_seed + args.seeds - 1
    print(f"device: {device()}; Figure 4 quick shapes (H = 8, D = 8, S = R), seeds {args.first_seed}–{last}")
    print(
        f"recipe of both procedures: batch {args.batch}, ≤ {args.steps} steps, evaluated every 128 steps, "
        f"rates {list(PAPER_LRS)} (the paper's: in order, first success; ours: all at once); "
        f"paper's bisection on k in [{lo}, {hi}]",
        flush=True,
    )


def in_own_processes(args: argparse.Namespace) -> None:
    """Each shape in a process of its own (this script with ``--shapes i``).

    One process that ran all six shapes (well over a hundred compiled programs: the paper's procedure compiles
    one per k) died at the sixth with "LLVM compilation error: Cannot allocate memory" and no traceback; a
    process per shape keeps each one's compiled programs to its own searches, and a shape that fails is
    reported without losing the others."""
    lo, hi = args.bounds
    common = ["--seeds", str(args.seeds), "--steps", str(args.steps), "--first-seed", str(args.first_seed)]
    common += ["--batch", str(args.batch), "--bounds", str(lo), str(hi), "--ours", *args.ours, "--no-header"]
    for i in args.shapes:
        done = subprocess.run([sys.executable, __file__, "--shapes", str(i), *common], check=False)
        if done.returncode != 0:
            print(f"\nshape {i}: its process exited with status {done.returncode}", flush=True)


if __name__ == "__main__":
    main()
