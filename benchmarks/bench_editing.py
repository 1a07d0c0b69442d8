"""Benchmark: one edit of a transformer at about half its capacity — rank-one vs batch vs fine-tuning.

The model: d = 16, H = 4, d_h = 2, m = 64 (2,560 parameters, MLP-heavy: the MLP keys live in R^64), D = 8,
T = 32, trained on S = R = 9 (81 facts) until every fact is answered in 4 fresh contexts. Its capacity
N* = 169 facts (S = R = 13 stored, 14 not; D = 8) was measured with the quick Figure 4 recipe
(:data:`CAPACITY`), so 81 facts is 0.48 N*: about half its capacity. ``--quick``: the suite's tiny
transformer at D = 8 (S = R = 4: 16 facts, well below its capacity) and 4 edits.

Each method edits the same fact (``random_edits(seed=0)``) twice in one process: the first call compiles
its programs (compile included), the second, with another key and the same shapes, reuses them (compile
excluded). Every edit is then scored in 8 fresh contexts per fact (efficacy, specificity, paraphrase). The
fine-tuning runs stop when the edited fact is answered in all their evaluation contexts (efficacy 1.0):
``finetune`` is the default grid (the paper's {1e-3, 3e-3, 1e-2}, the first rate to reach efficacy stops
the grid), ``finetune+replay`` trains at 1e-3 with a replayed batch of every fact (slower, more specific).
Then ``--edits`` single edits (seeds 0, 1, …) per method: how many reach efficacy 1.0 and specificity ≥ 0.99.

Usage: ``python benchmarks/bench_editing.py [--quick] [--edits 16]``.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from factrecall.editing.edits import random_edits  # noqa: E402
from factrecall.editing.methods import EditSettings, apply_edits  # noqa: E402
from factrecall.editing.metrics import edit_scores  # noqa: E402
from factrecall.recall import training  # noqa: E402
from factrecall.recall.task import facts_random  # noqa: E402

FULL = {"S": 9, "R": 9, "D": 8, "T": 32, "d": 16, "H": 4, "d_h": 2, "m": 64}
QUICK = {"S": 4, "R": 4, "D": 8, "T": 6, "d": 16, "H": 2, "d_h": 4, "m": 16}
# N* of the full shape: `factrecall capacity transformer --d 16 --heads 4 --head-dim 2 --width 64
# --answers-per-relation 8 --batch 256 --steps 4096 --lr 1e-2 --lr 3e-2 --patience 1024` (seed 0, criterion
# 0.99): 169 facts, 96 s on 2 loaded cores
CAPACITY = 169
METHODS = {
    "rank-one": ("rank-one", "mlp", EditSettings()),
    "batch": ("batch", "mlp", EditSettings()),
    "rank-one both": ("rank-one", "both", EditSettings()),
    "finetune": ("finetune", "mlp", EditSettings()),
    "finetune+replay": ("finetune", "mlp", EditSettings(ft_lrs=(1e-3,), replay=True)),
}


def trained(shape: dict) -> training.Trained:
    task, cfg = training.task_and_config(*shape.values())
    recipe = training.Recipe(8192, 256 if shape["T"] > 8 else 128, training.EVAL_EVERY, 1.0)
    facts = facts_random(task, key=jax.random.fold_in(jax.random.key(0), 1))
    model = training.train(cfg, task, facts, recipe, (1e-2, 3e-2), seed=0)
    assert model.info["reached"], "the benchmark model must store every fact"
    return model


def timed(model, edits, name: str) -> dict:
    """The first (compile included) and second (compile excluded) edit, and the first one's scores."""
    method, where, settings = METHODS[name]
    first = apply_edits(model, edits, method, where, key=jax.random.key(0), settings=settings)
    second = apply_edits(model, edits, method, where, key=jax.random.key(1), settings=settings)
    scores = edit_scores(model, first.model, edits, 8, key=jax.random.key(2))
    times = {"first": first.seconds, "warm": second.seconds, "delta": first.delta_norm}
    return {**times, "steps": first.info.get("steps", ""), **scores}


def sweep(model, name: str, n: int) -> tuple[int, float, float]:
    """Over n single edits: how many are stored and specific, mean specificity, median warm seconds."""
    method, where, settings = METHODS[name]
    ok, specs, secs = 0, [], []
    for seed in range(n):
        edits = random_edits(model.facts, model.task.D, 1, seed=seed)
        edited = apply_edits(model, edits, method, where, key=jax.random.key(seed), settings=settings)
        s = edit_scores(model, edited.model, edits, 8, key=jax.random.key(10_000 + seed))
        ok += s["efficacy"] == 1.0 and s["specificity"] >= 0.99
        specs.append(s["specificity"])
        secs.append(edited.seconds)
    return ok, float(np.mean(specs)), float(np.median(secs))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="the suite's tiny transformer (D = 8), 4 edits")
    ap.add_argument("--edits", type=int, default=None, help="single edits per method in the sweep (16)")
    args = ap.parse_args()
    shape = QUICK if args.quick else FULL
    n = args.edits or (4 if args.quick else 16)
    start = time.perf_counter()
    model = trained(shape)
    facts = shape["S"] * shape["R"]
    fill = "quick" if args.quick else f"{facts / CAPACITY:.2f} of N* = {CAPACITY}"
    print(f"model {shape}: {facts} facts ({fill}), trained in {time.perf_counter() - start:.1f} s")
    edits = random_edits(model.facts, model.task.D, 1, seed=0)
    rows = {name: timed(model, edits, name) for name in METHODS}
    print(f"one edit {edits[0]}; seconds: first call (compile included) / second call (compile excluded)")
    print("| method | first s | warm s | steps | efficacy | specificity | paraphrase | ‖ΔW‖ |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['first']:.2f} | {r['warm']:.3f} | {r['steps']} | {r['efficacy']:.3f} | "
            f"{r['specificity']:.4f} | {r['paraphrase']:.3f} | {r['delta']:.1f} |"
        )
    one = rows["rank-one"]
    for name in ("finetune", "finetune+replay"):
        ft = rows[name]
        print(
            f"{name} / rank-one: {ft['first'] / one['first']:.1f}× compile included, "
            f"{ft['warm'] / one['warm']:.1f}× compile excluded (target ≥ 10)"
        )
    print(f"\n{n} single edits (seeds 0–{n - 1}), 8 fresh contexts each:")
    print("| method | efficacy 1.0 and specificity ≥ 0.99 | mean specificity | median warm s |")
    print("|---|---|---|---|")
    for name in METHODS:
        ok, spec, sec = sweep(model, name, n)
        print(f"| {name} | {ok}/{n} | {spec:.4f} | {sec:.3f} |")


if __name__ == "__main__":
    main()
