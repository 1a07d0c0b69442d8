"""Where a one-layer transformer's capacity comes from: accuracy over a grid of heads H × MLP widths m
(Figure 4 right).

Owns :func:`tradeoff` (the full product Hs × ms) and :func:`tradeoff_cells` (an explicit list of (H, m)
cells, e.g. rows and columns of the paper's grid), their results and the grouping of cells into programs
(:func:`group_cells`). At fixed d, d_h and task, every cell of a program is zero-padded to the program's
largest H and m (inert heads and units, :func:`factrecall.recall.transformer.init_padded`) so that its
cells, seeds and learning rates train as one vmapped program of
:func:`factrecall.recall.training.train_batch`; each cell keeps its learning rate by the one rule
(:func:`factrecall.recall.training.kept_runs`). A cell's run depends only on its (H, m), its seed and the
recipe: padding and grouping only change which program trains it.

Paper: §4 and Figure 4 right; SPEC §3, §7.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.bounds import transformer_params
from factrecall.recall.task import RecallTask, facts_random
from factrecall.recall.training import PAPER_LRS, Kept, Recipe, kept_runs, train_batch
from factrecall.recall.transformer import TransformerConfig

Cell = tuple[int, int]  # (H, m)


def _row(d: int, d_h: int, H: int, m: int, acc: np.ndarray, steps: Any, lr: Any, diverged: Any) -> dict:
    """One cell's record from its per-seed arrays: H, m, the paper's axes d·d_h·H and d·m, the parameter
    count and the mean accuracy over seeds."""
    return {
        "H": H,
        "m": m,
        "attention_axis": d * d_h * H,
        "mlp_axis": d * m,
        "params": transformer_params(d, H, d_h, m),
        "accuracy": float(acc.mean()),
        "accuracy_per_seed": [float(a) for a in acc],
        "steps": int(steps.max()),
        "lr": [float(x) for x in lr],
        "diverged_runs": int(diverged.sum()),
    }


def _arrays(runs: Sequence[Kept], shape: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """The kept runs' accuracy, steps, learning rate and diverged count, each reshaped to ``shape``."""

    def grid(field: str, dtype: type) -> np.ndarray:
        return np.array([getattr(r, field) for r in runs], dtype).reshape(shape)

    return (
        grid("accuracy", np.float32),
        grid("steps", np.int32),
        grid("lr", np.float64),
        grid("diverged", np.int64),
    )


class Tradeoff(NamedTuple):
    """Accuracy over every fact for each (H, m) cell of the product Hs × ms: the kept learning rate's, per
    seed."""

    Hs: tuple[int, ...]
    ms: tuple[int, ...]
    accuracy: np.ndarray  # (len(Hs), len(ms), seeds): the kept run's best fact_accuracy (0 if all diverged)
    steps: np.ndarray  # (len(Hs), len(ms), seeds): steps run by the kept learning rate
    lr: np.ndarray  # (len(Hs), len(ms), seeds): the kept learning rate
    diverged: np.ndarray  # (len(Hs), len(ms), seeds): learning rates that diverged
    seconds: float

    def rows(self, d: int, d_h: int) -> list[dict[str, Any]]:
        """One record per cell (H-major): H, m, the axes d·d_h·H and d·m, mean accuracy over seeds."""
        out = []
        for i, H in enumerate(self.Hs):
            for j, m in enumerate(self.ms):
                fields = (self.accuracy, self.steps, self.lr, self.diverged)
                out.append(_row(d, d_h, H, m, *(x[i, j] for x in fields)))
        return out


class CellGrid(NamedTuple):
    """Accuracy over every fact for an explicit list of cells (:func:`tradeoff_cells`), per seed.

    Attributes:
        cells: the (H, m) cells, in the order given.
        accuracy: (cells, seeds): the kept run's best fact_accuracy (0 if all diverged).
        steps: (cells, seeds): steps run by the kept learning rate.
        lr: (cells, seeds): the kept learning rate.
        diverged: (cells, seeds): learning rates that diverged.
        programs: each program's padded shape (H, m) and the cells it trained.
        seconds: wall time of all programs (compilation included).
    """

    cells: tuple[Cell, ...]
    accuracy: np.ndarray
    steps: np.ndarray
    lr: np.ndarray
    diverged: np.ndarray
    programs: tuple[tuple[Cell, tuple[Cell, ...]], ...]
    seconds: float

    def rows(self, d: int, d_h: int) -> list[dict[str, Any]]:
        """One record per cell, in the order given (see :meth:`Tradeoff.rows`)."""
        fields = (self.accuracy, self.steps, self.lr, self.diverged)
        return [_row(d, d_h, H, m, *(x[k] for x in fields)) for k, (H, m) in enumerate(self.cells)]


def _train_cells(
    task: RecallTask,
    d: int,
    d_h: int,
    cells: Sequence[Cell],
    recipe: Recipe,
    lrs: Sequence[float],
    seeds: Sequence[int],
) -> list[Kept]:
    """Train ``cells`` × ``seeds`` × ``lrs`` as one program padded to the cells' largest H and m; the kept run
    of each (cell, seed), cell-major. Seed s draws its facts from ``fold_in(key(s), 1)`` and everything else
    from ``key(s)``: cells of one seed share facts and start from prefix-identical weights."""
    cfg = TransformerConfig(
        d, max(H for H, _ in cells), d_h, max(m for _, m in cells), task.vocab, task.n_answers
    )
    runs = [(H, m, s) for H, m in cells for s in seeds]
    keys = jnp.stack([jax.random.key(s) for _, _, s in runs])
    facts = jnp.stack([facts_random(task, key=jax.random.fold_in(jax.random.key(s), 1)) for _, _, s in runs])
    shapes = jnp.array([[H, m] for H, m, _ in runs])
    res = train_batch(cfg, task, recipe, facts, shapes, jnp.array(lrs, jnp.float32), key=keys)
    return kept_runs(res, lrs)


def tradeoff(
    task: RecallTask,
    d: int,
    d_h: int,
    Hs: Sequence[int],
    ms: Sequence[int],
    recipe: Recipe,
    lrs: Sequence[float] = PAPER_LRS,
    seeds: Sequence[int] = (0,),
) -> Tradeoff:
    """Train every (H, m) cell of Hs × ms × seed × learning rate as one vmapped program (cells padded to
    max H, max m).

    Each seed has its own facts (shared by its cells) and its own initialisation; cells of one seed start
    from prefix-identical weights. The program stops when every cell reached the criterion or the budget.
    The arguments are trusted: H ≥ 1, m ≥ 0, at least one seed and a valid recipe.
    """
    start = time.perf_counter()
    runs = _train_cells(task, d, d_h, [(H, m) for H in Hs for m in ms], recipe, lrs, seeds)
    shape = (len(Hs), len(ms), len(seeds))
    return Tradeoff(tuple(Hs), tuple(ms), *_arrays(runs, shape), time.perf_counter() - start)


STEP_COST = (24.0, 1.0, 1 / 48)
"""Relative cost (a, b, c) of one training sequence of a cell padded to (H, m): a + b·H + c·m, at d = 32,
d_h = 8, T = 32, 256 answers on 2 CPU cores (measured: ≈ 5.5 µs at H = 8, m = 64 and ≈ 9.6 µs at H = 24,
m = 128; the fixed part is sampling, embedding, unembedding and the optimizer). :func:`group_cells`
minimises the padded cost with it."""


def _padded_cost(cells: Sequence[Cell]) -> float:
    a, b, c = STEP_COST
    return len(cells) * (a + b * max(H for H, _ in cells) + c * max(m for _, m in cells))


def group_cells(cells: tuple[Cell, ...], programs: int) -> tuple[tuple[Cell, ...], ...]:
    """Split ``cells`` into at most ``programs`` groups, each trained as one program padded to its largest
    (H, m), with the least padded cost (:data:`STEP_COST`) over splits of the cells sorted by (H, m).

    >>> group_cells(((1, 1), (24, 1), (1, 64), (2, 1)), 2)
    (((1, 1), (1, 64), (2, 1)), ((24, 1),))
    """
    order = sorted(set(cells))
    n = len(order)
    # best[k][j]: least cost of the first j cells in k groups, and where its last group starts
    best = [[(0.0, 0)] + [(float("inf"), 0)] * n]
    for _ in range(min(programs, n)):
        prev, row = best[-1], [(float("inf"), 0)] * (n + 1)
        for j in range(1, n + 1):
            row[j] = min((prev[i][0] + _padded_cost(order[i:j]), i) for i in range(j))
        best.append(row)
    k = min(range(1, len(best)), key=lambda k: best[k][n][0])
    groups, j = [], n
    for level in range(k, 0, -1):
        i = best[level][j][1]
        groups.append(tuple(order[i:j]))
        j = i
    return tuple(reversed(groups))


def tradeoff_cells(
    task: RecallTask,
    d: int,
    d_h: int,
    cells: Sequence[Cell],
    recipe: Recipe,
    lrs: Sequence[float] = PAPER_LRS,
    seeds: Sequence[int] = (0,),
    programs: int = 1,
    on_program: Callable[[int, int, str], None] | None = None,
) -> CellGrid:
    """Train an explicit list of (H, m) cells, grouped into at most ``programs`` programs by size
    (:func:`group_cells`); each program is :func:`tradeoff`'s (every cell × seed × learning rate padded to
    the program's largest H and m, stopping when every cell reached the criterion or the budget).

    A cell's numbers are the ones the full grid gives it when the padded programs round alike. The arguments
    are trusted: distinct cells with H ≥ 1, m ≥ 0, at least one seed and a valid recipe.

    Args:
        on_program: ``on_program(done, total, status)`` before each program and after the last.
    """
    start = time.perf_counter()
    cells = [(int(H), int(m)) for H, m in cells]
    groups = group_cells(tuple(cells), programs)
    kept: dict[Cell, list[Kept]] = {}
    shapes = []
    for i, group in enumerate(groups):
        pad = (max(H for H, _ in group), max(m for _, m in group))
        if on_program is not None:
            on_program(i, len(groups), f"program {i + 1}/{len(groups)}: {len(group)} cells padded to {pad}")
        runs = _train_cells(task, d, d_h, group, recipe, lrs, seeds)
        kept |= {cell: runs[j * len(seeds) : (j + 1) * len(seeds)] for j, cell in enumerate(group)}
        shapes.append((pad, group))
    if on_program is not None:
        on_program(len(groups), len(groups), f"{len(kept)} cells in {len(groups)} programs")
    arrays = _arrays([r for c in cells for r in kept[c]], (len(cells), len(seeds)))
    return CellGrid(tuple(cells), *arrays, tuple(shapes), time.perf_counter() - start)
