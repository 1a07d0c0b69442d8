"""Benchmark: the MLP-memory capacity search on its work queue vs the lockstep rounds it replaced.

Ours: factrecall.memories.capacity.capacity for a trained MLP memory (the work queue of
factrecall.memories.queue) — each seed brackets on its own, its runs (seed, N, learning rate) share
3·seeds slots that are refilled as runs stop (factrecall.core.runs.advance_runs), a run stuck well below
the criterion stops after 5120 steps without a gain, the guess uses our measured m·d ≈ 0.30·N ln N and the
first move is ×1.03.

Baseline (the schedule before it, run here from the same building blocks): lockstep rounds — every
unfinished seed tests one N per round, all (seed, N, lr) runs of a round are padded to one shape and
trained as one program (factrecall.memories.trials.run_trials, tightest padding), so a round lasts as
long as its slowest trial; no patience; the guess m·d = 0.35·N ln N (the paper's guide) and first move
×1.15. Same recipe otherwise (Adam, cosine over 32,768 steps, lrs {0.03, 0.1, 0.3}, criterion 0.99, 1%
precision).

Usage: python benchmarks/bench_mlp_capacity.py [--d 16] [--seeds 3]
Prints one table: wall time of each, the ratio baseline/ours, trials, and both N* per seed. Near capacity
whether a trial stores its facts is close to a coin flip decided by float rounding (benchmarks/RESULTS.md),
so the two N* may differ by a few facts; their medians should agree within 3%.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from factrecall.core import bounds  # noqa: E402
from factrecall.core.provenance import device  # noqa: E402
from factrecall.core.search import Trial, search_largest  # noqa: E402
from factrecall.memories.capacity import capacity  # noqa: E402
from factrecall.memories.spec import recipe  # noqa: E402
from factrecall.memories.trials import run_trials  # noqa: E402


def lockstep(d: int, seeds: tuple[int, ...]) -> tuple[tuple[int, ...], int, float]:
    """Lockstep rounds at their tightest padding, no patience, the paper's guide as the guess."""
    spec = recipe("mlp", d, d)._replace(patience=None)

    def run_round(Ns: list[int], active: list[int]) -> list[Trial]:
        return run_trials(spec, Ns, active)

    guess = max(2, int(bounds.solve_n_log_n(d * d / 0.35)))
    start = time.perf_counter()
    per_seed, _, trials = search_largest(run_round, seeds, guess)
    return per_seed, len(trials), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d", type=int, nargs="+", default=[16])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    seeds = tuple(range(args.seeds))
    print(f"device: {device()}")
    columns = ["d", "seeds", "ours (s)", "lockstep (s)", "lockstep/ours", "trials ours / lockstep", "N* ours"]
    print("| " + " | ".join([*columns, "N* lockstep"]) + " |")
    print("|---|---|---|---|---|---|---|---|")
    for d in args.d:
        result = capacity(recipe("mlp", d, d), seeds)
        base, base_trials, base_s = lockstep(d, seeds)
        ours = result.capacity_per_seed
        agree = abs(statistics.median(ours) - statistics.median(base)) <= 0.03 * statistics.median(base)
        print(
            f"| {d} | {len(seeds)} | {result.seconds:.1f} | {base_s:.1f} | {base_s / result.seconds:.1f} | "
            f"{len(result.trials)} / {base_trials} | {', '.join(map(str, ours))} | "
            f"{', '.join(map(str, base))}{'' if agree else ' (medians differ by > 3%)'} |"
        )


if __name__ == "__main__":
    main()
