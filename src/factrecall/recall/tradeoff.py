"""Where a one-layer transformer's capacity comes from: accuracy over a grid of heads H × MLP widths m
(Figure 4 right).

Owns :func:`tradeoff` and its result. At fixed d, d_h and task, every (H, m) cell is zero-padded to the
grid's largest H and m (inert heads and units, :func:`factrecall.recall.transformer.init_padded`) so that
the whole grid, its seeds and its learning rates train as one vmapped program of
:func:`factrecall.recall.training.train_batch`; each cell keeps its learning rate by the one rule
(:func:`factrecall.recall.training.kept_runs`).

Paper: §4 and Figure 4 right; SPEC §3, §7.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.bounds import transformer_params
from factrecall.recall.task import RecallTask, facts_random
from factrecall.recall.training import PAPER_LRS, Recipe, kept_runs, train_batch
from factrecall.recall.transformer import TransformerConfig


class Tradeoff(NamedTuple):
    """Accuracy over every fact for each (H, m) cell: the kept learning rate's, per seed."""

    Hs: tuple[int, ...]
    ms: tuple[int, ...]
    accuracy: np.ndarray  # (len(Hs), len(ms), seeds): the kept run's best fact_accuracy (0 if all diverged)
    steps: np.ndarray  # (len(Hs), len(ms), seeds): steps run by the kept learning rate
    lr: np.ndarray  # (len(Hs), len(ms), seeds): the kept learning rate
    diverged: np.ndarray  # (len(Hs), len(ms), seeds): learning rates that diverged
    seconds: float

    def rows(self, d: int, d_h: int) -> list[dict[str, Any]]:
        """One record per cell: H, m, the paper's axes d·d_h·H and d·m, mean accuracy over seeds."""
        out = []
        for i, H in enumerate(self.Hs):
            for j, m in enumerate(self.ms):
                acc = self.accuracy[i, j]
                out.append(
                    {
                        "H": H,
                        "m": m,
                        "attention_axis": d * d_h * H,
                        "mlp_axis": d * m,
                        "params": transformer_params(d, H, d_h, m),
                        "accuracy": float(acc.mean()),
                        "accuracy_per_seed": [float(a) for a in acc],
                        "steps": int(self.steps[i, j].max()),
                        "lr": [float(x) for x in self.lr[i, j]],
                        "diverged_runs": int(self.diverged[i, j].sum()),
                    }
                )
        return out


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
    """Train every (H, m) cell × seed × learning rate as one vmapped program (cells padded to max H, max m).

    Each seed has its own facts (shared by its cells) and its own initialisation; cells of one seed start
    from prefix-identical weights. The program stops when every cell reached the criterion or the budget.
    The arguments are trusted: H ≥ 1, m ≥ 0, at least one seed and a valid recipe.
    """
    cfg = TransformerConfig(d, max(Hs), d_h, max(ms), task.vocab, task.n_answers)
    start = time.perf_counter()
    cells = [(H, m, s) for H in Hs for m in ms for s in seeds]
    keys = jnp.stack([jax.random.key(s) for _, _, s in cells])
    facts = jnp.stack([facts_random(task, key=jax.random.fold_in(jax.random.key(s), 1)) for _, _, s in cells])
    shapes = jnp.array([[H, m] for H, m, _ in cells])
    res = train_batch(cfg, task, recipe, facts, shapes, jnp.array(lrs, jnp.float32), key=keys)
    runs = kept_runs(res, lrs)

    def grid(field: str, dtype: type) -> np.ndarray:
        return np.array([getattr(r, field) for r in runs], dtype).reshape(len(Hs), len(ms), len(seeds))

    return Tradeoff(
        tuple(Hs),
        tuple(ms),
        grid("accuracy", np.float32),
        grid("steps", np.int32),
        grid("lr", np.float64),
        grid("diverged", np.int64),
        time.perf_counter() - start,
    )
