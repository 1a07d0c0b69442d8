"""Traces of every run of a transformer capacity search, and early-stopping rules replayed on them.

A rule that stops runs early (the stall rule, patience, the race) saves steps but must not change what a
search decides. This script records, for one ``recall.capacity.capacity`` search, every run's (step, best
accuracy) after each span of the work queue and how each run stopped, then replays candidate rules on those
traces: for each rule, the run-steps it would save and the stored trials it would lose (a run that reached the
criterion stopped before it did, with no other rate of its trial reaching it). It is how ``RACE_MARGIN`` and
``RACE_AFTER`` were chosen (``benchmarks/RESULTS.md``, "The race").

Usage:
    python benchmarks/trace_rules.py collect OUT.json --d 16 --d-h 2 --m 16 [--seeds 3] [--steps 16384]
        [--batch 1024] [--lr 0.001 --lr 0.003 --lr 0.01] [--patience 0] [--no-stall]
        (the defaults are ``capacity transformer``'s)
    python benchmarks/trace_rules.py replay OUT.json [MORE.json ...]

The search is recorded with patience and the stall rule and without the race (``--with-race`` keeps it), so
that the race's candidates are replayed on whole trajectories; ``--patience 0 --no-stall`` records every run
to its criterion or budget, so that patience variants (a longer patience, or none near the criterion) are
replayed too. A replay is exact up to the span (a rule is checked where the trace has a point) and takes each
run's path as recorded: it does not re-train, so it cannot see what a run stopped by the recorded search's own
rules would have done later. A run's path carries over to a search with other rules only while its rounding
does not depend on the runs beside it: at d = 16 it did, at 2–3 runs per device against 4 or more, until
transformer searches kept ``recall.capacity.MIN_PER_DEVICE`` = 4 (``benchmarks/RESULTS.md``, "What a replay
cannot see"); recordings made before that mix the two roundings, and a trial that stores late in one may not
in the search replayed.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
from collections.abc import Callable  # noqa: E402

from factrecall.core import queue  # noqa: E402
from factrecall.experiments.specs import TransformerCapacityPoint  # noqa: E402
from factrecall.recall import capacity as tc  # noqa: E402

Trace = list[tuple[int, float]]
Rule = Callable[[Trace, int, float], bool]  # (the run's trace so far, N, rivals' best by then) -> stop


def collect(args: argparse.Namespace) -> None:
    """Run one search and write every run's trace, how it stopped, and the trials."""
    spans, stops = [], []
    judge, advance = queue.RunQueue._judge, queue.RunQueue.advance

    def recording_judge(self, h):
        spans.extend([list(x), int(h.step[i]), float(h.best[i])] for i, x in enumerate(self.slots) if x)
        return judge(self, h)

    def recording_advance(self):
        out = advance(self)
        stops.extend([list(x), list(o)] for x, o in out)
        return out

    queue.RunQueue._judge, queue.RunQueue.advance = recording_judge, recording_advance
    if not args.with_race:
        tc.RACE_MARGIN = float("inf")  # TransformerFamily reads it when built: no run trails by more
    fields = {"d": args.d, "H": args.heads, "d_h": args.d_h, "m": args.m, "n_steps": args.steps}
    fields |= {"batch": args.batch} | ({"lrs": args.lr} if args.lr else {})
    fields |= {"patience": args.patience} if args.patience is not None else {}
    fields |= {"early_stops": not args.no_stall}
    spec = TransformerCapacityPoint(**fields).spec
    result = tc.capacity(spec, tuple(range(args.seeds)))
    record = {"lrs": list(spec.lrs), "n_steps": spec.recipe.n_steps, "criterion": spec.recipe.criterion}
    record |= {"spans": spans, "stopped": stops, "facts_per_seed": result.summary()["capacity_per_seed"]}
    record |= {"race": args.with_race, "seconds": result.seconds}
    record["trials"] = [t._asdict() for t in result.trials]
    with open(args.out, "w") as f:
        json.dump(record, f)
    print(f"{args.out}: N* per seed {record['facts_per_seed']}, {result.seconds:.0f} s, {len(stops)} runs")


def stall(factor: float, window: float, n_steps: int, criterion: float, band: float = 0.0) -> Rule:
    """The stall rule (``recall.capacity.hopeless``) at another factor/window, with its family's floor
    (``TransformerFamily.stall_below``: two facts short of the criterion, or ``band`` of them if more)."""

    def rule(trace: Trace, N: int, rivals: float) -> bool:
        S, R, _ = tc.sizes(N, "linear", 8)
        below = criterion - max(2.0 / (S * R), band)
        return tc.hopeless(trace, n_steps, criterion, below, factor=factor, window=window)

    return rule


def race(margin: float, after: float, n_steps: int, base: Rule) -> Rule:
    def rule(trace: Trace, N: int, rivals: float) -> bool:
        t, b = trace[-1]
        return base(trace, N, rivals) or (t >= after * n_steps and b < rivals - margin)

    return rule


def patience(steps: int, short: float, n_steps: int, criterion: float, base: Rule, band: float = 0.0) -> Rule:
    """``base``, or patience: no gain in the best accuracy for ``steps`` steps while more than ``short``
    facts (and ``band`` of them) short of the criterion (the command's rule: ``short`` = 2, ``band`` = 0)."""

    def rule(trace: Trace, N: int, rivals: float) -> bool:
        S, R, _ = tc.sizes(N, "linear", 8)
        t, b = trace[-1]
        last_gain = max([s for (s, v), (_, u) in zip(trace[1:], trace[:-1], strict=True) if v > u], default=0)
        far = (criterion - b) * S * R > short and criterion - b > band
        return base(trace, N, rivals) or (far and t - last_gain >= steps)

    return rule


def replay(path: str) -> None:
    """Each candidate rule on one file's traces: run-steps saved, stored trials lost."""
    rec = json.load(open(path))
    T, L, crit = rec["n_steps"], len(rec["lrs"]), rec.get("criterion", 0.99)
    traces: dict[tuple, Trace] = collections.defaultdict(list)
    for run, step, best, *_ in rec["spans"]:  # older files add a fourth field
        traces[tuple(run)].append((step, best))
    final = {tuple(run): outcome for run, outcome in rec["stopped"]}  # (best, diverged, steps)
    steps = {r: final[r][2] if r in final else traces[r][-1][0] for r in traces}
    now = stall(tc.STALL_FACTOR, tc.STALL_WINDOW, T, crit)
    rules = {"stall factor 1 (no race)": stall(1.0, tc.STALL_WINDOW, T, crit)}
    for margin in (0.1, 0.15):
        for after in (1 / 16, 1 / 8, 1 / 4):
            rules[f"race {margin}, from {after:g} of the budget"] = race(margin, after, T, now)
    default = race(tc.RACE_MARGIN, tc.RACE_AFTER, T, now)
    for p_steps in (2048, 4096):
        for short in (2, 4, 8):
            rules[f"patience {p_steps}, > {short} facts short"] = patience(p_steps, short, T, crit, default)
    for band in (0.01, 0.02, 0.03):
        banded = race(
            tc.RACE_MARGIN, tc.RACE_AFTER, T, stall(tc.STALL_FACTOR, tc.STALL_WINDOW, T, crit, band)
        )
        rules[f"patience 2048 and stall, > {band:g} short"] = patience(2048, 2, T, crit, banded, band)
    found = rec.get("facts_per_seed", rec.get("n_per_seed"))  # older files: size indices
    print(f"\n{path}: {sum(steps.values()):,} run-steps, N* per seed {found}")
    for name, rule in rules.items():
        saved, cut = 0, set()
        for run, trace in traces.items():
            for i, (t, _) in enumerate(trace):
                others = [(*run[:2], j) for j in range(L) if j != run[2]]
                rivals = max([b for o in others for s, b in traces.get(o, []) if s <= t], default=0.0)
                if t < steps[run] and rule(trace[: i + 1], run[1], rivals):
                    saved += steps[run] - t
                    cut |= {run} if run in final and final[run][0] >= crit else set()
                    break
        stored = {r[:2] for r in final if final[r][0] >= crit}
        kept = {r[:2] for r in final if final[r][0] >= crit and r not in cut}
        share = saved / sum(steps.values())
        print(f"  {name:36s} saves {share:4.0%}; stored trials lost: {sorted(stored - kept)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("collect")
    c.add_argument("out")
    for name, default in (("--d", 16), ("--heads", 8), ("--d-h", 2), ("--m", 16), ("--seeds", 3)):
        c.add_argument(name, type=int, default=default)
    c.add_argument("--steps", type=int, default=16384)
    c.add_argument("--batch", type=int, default=1024)
    c.add_argument("--lr", type=float, action="append")
    c.add_argument("--with-race", action="store_true", help="record the search with the race on")
    c.add_argument("--patience", type=int, help="the search's patience (0: none; default: the command's)")
    c.add_argument("--no-stall", action="store_true", help="record the search without the stall rule")
    r = sub.add_parser("replay")
    r.add_argument("files", nargs="+")
    args = parser.parse_args()
    if args.command == "collect":
        collect(args)
    else:
        for path in args.files:
            replay(path)


if __name__ == "__main__":
    main()
