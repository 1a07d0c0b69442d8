"""Benchmark: the item-3 run (d=32, H=4, d_h=8, m=64, S=R=16, D=8, lr 1e-2) to fact_accuracy ≥ 0.99.

* ours: ``factrecall.recall.training.train`` — batches sampled inside the compiled step, the whole run one
  compiled ``while_loop`` that stops at the criterion;
* naive (written here, as the authors' code does it): sequences pre-sampled into a buffer, a jitted step
  called from a Python loop, one model at a time, evaluation every 128 steps.

Each mode runs in its own process, so peak memory (max RSS) is its own. Usage:
``python benchmarks/bench_transformer.py [--naive-sequences 2**21]``.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import optax  # noqa: E402

from factrecall.core.engine import compile_seconds, cross_entropy  # noqa: E402
from factrecall.experiments.specs import TransformerTrainPoint  # noqa: E402
from factrecall.recall import models  # noqa: E402
from factrecall.recall import training as recall  # noqa: E402
from factrecall.recall.task import facts_random, recall_task, sample  # noqa: E402
from factrecall.recall.transformer import TransformerConfig, forward, frozen, init  # noqa: E402

TASK = recall_task(16, 16, 8)
CFG = TransformerConfig(32, 4, 8, 64, TASK.vocab, TASK.n_answers)
FACTS = facts_random(TASK, key=jax.random.key(1))
RECIPE = TransformerTrainPoint().spec[2]  # the train command's recipe: 16384 steps of 1024, stop at 0.99


def ours() -> dict:
    start = time.perf_counter()
    model = recall.train(CFG, TASK, FACTS, RECIPE, (1e-2,))
    trained = time.perf_counter()
    compiled = compile_seconds()
    r = models.report(model, key=jax.random.key(2))
    return {
        "seconds": time.perf_counter() - start,
        "steps": r["steps"],
        "fact_accuracy": r["fact_accuracy"],
        "compile_s": compile_seconds(),
        "train_s": trained - start - compiled,  # the compiled loop itself: steps and in-loop evaluations
    }


def naive(n_sequences: int) -> dict:
    start = time.perf_counter()
    buf = sample(TASK, FACTS, n_sequences, key=jax.random.key(3))  # the pre-sampled epoch
    jax.block_until_ready(buf.tokens)
    loop_start, compiled = time.perf_counter(), compile_seconds()
    params = init(CFG, key=jax.random.key(0))
    opt = optax.adam(1e-2)
    state = opt.init(params)

    def loss(p, tokens, labels):
        p = frozen(p, CFG)
        return cross_entropy(jax.vmap(lambda t: forward(p, t))(tokens), labels)

    @jax.jit
    def step(p, s, tokens, labels):
        g = jax.grad(loss)(p, tokens, labels)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    evaluate = jax.jit(lambda p, k: recall.score_facts(p, CFG, TASK, FACTS, 4, key=k).fact_accuracy)
    acc, t = 0.0, 0
    n_batches = n_sequences // 1024
    while acc < 0.99 and t < 16384:
        i = (t % n_batches) * 1024
        params, state = step(params, state, buf.tokens[i : i + 1024], buf.labels[i : i + 1024])
        t += 1
        if t % 128 == 0:
            acc = float(evaluate(params, jax.random.key(t)))
    end = time.perf_counter()
    return {
        "seconds": end - start,
        "steps": t,
        "fact_accuracy": acc,
        "compile_s": compile_seconds(),
        "train_s": end - loop_start - (compile_seconds() - compiled),  # steps and evaluations
        "presample_s": loop_start - start,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["both", "ours", "naive"], default="both")
    ap.add_argument(
        "--naive-sequences", type=int, default=2**21, help="pre-sampled sequences (authors: 2^24)"
    )
    args = ap.parse_args()
    if args.mode != "both":
        out = ours() if args.mode == "ours" else naive(args.naive_sequences)
        out["peak_MiB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    res = {}
    for mode in ("ours", "naive"):
        cmd = [sys.executable, __file__, "--mode", mode, "--naive-sequences", str(args.naive_sequences)]
        res[mode] = json.loads(
            subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1]
        )
        r = res[mode]
        print(
            f"{mode:6s} {r['seconds']:7.1f} s  {r['steps']:5d} steps  acc {r['fact_accuracy']:.4f}  "
            f"peak {r['peak_MiB']:.0f} MiB  (XLA compile {r['compile_s']:.1f} s, "
            f"training loop {r['train_s']:.1f} s = {1e3 * r['train_s'] / r['steps']:.1f} ms/step"
            + (f", pre-sampling {r['presample_s']:.1f} s)" if "presample_s" in r else ")")
        )
    o, n = res["ours"], res["naive"]
    print(
        f"ratio naive / ours: {n['seconds'] / o['seconds']:.1f}× wall time, "
        f"{(n['train_s'] / n['steps']) / (o['train_s'] / o['steps']):.1f}× time per training step, "
        f"{n['peak_MiB'] / o['peak_MiB']:.1f}× memory"
    )


if __name__ == "__main__":
    main()
