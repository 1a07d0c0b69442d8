"""Benchmark: the Figure 4 (right) trade-off grid, every (H, m) cell × seed × learning rate padded to the
grid's largest H and m and trained as one vmapped program.

``--scale quick`` is the CPU grid of ``factrecall reproduce fig4-tradeoff``; ``--scale paper`` is the
paper's 169 cells (H ∈ {1, …, 32} × m ∈ {1, …, 128}, S = R = 32, batch 1024, ≤ 2^14 steps, three learning
rates): meant for a GPU (target: ≤ 5 minutes on one H100). Prints the time, peak memory and the map.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()

import argparse  # noqa: E402
import resource  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from factrecall.experiments.figures.transformer import TRADEOFF_GRID  # noqa: E402
from factrecall.recall.capacity import trial_recipe  # noqa: E402
from factrecall.recall.task import recall_task  # noqa: E402
from factrecall.recall.tradeoff import tradeoff  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", choices=["quick", "paper"], default="quick")
    ap.add_argument("--steps", type=int, default=None, help="override the step budget")
    args = ap.parse_args()
    g = TRADEOFF_GRID[args.scale]
    recipe = trial_recipe(args.steps or g["n_steps"], g["batch"], 0.99)
    task = recall_task(g["S"], g["S"], 8)
    grid = tradeoff(task, 32, g["d_h"], g["Hs"], g["ms"], recipe, g["lrs"], (0,))
    cells = len(g["Hs"]) * len(g["ms"])
    print(f"device {jax.devices()[0].device_kind} ×{jax.device_count()}; {cells} cells × {len(g['lrs'])} lrs")
    print(
        f"seconds {grid.seconds:.1f}; peak host RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )
    print("H \\ m " + " ".join(f"{m:5d}" for m in g["ms"]))
    for i, H in enumerate(g["Hs"]):
        print(f"{H:5d} " + " ".join(f"{a:5.2f}" for a in np.asarray(grid.accuracy[i, :, 0])))


if __name__ == "__main__":
    main()
