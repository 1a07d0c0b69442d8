"""How well an edit took: efficacy, specificity and paraphrase, the scores knowledge-editing papers report.

Owns :func:`edit_scores`. Every fact is asked in ``n_contexts`` fresh random contexts (the same token
sequences for the model before and after the edit: :func:`~factrecall.recall.task.every_fact` draws them
from the key alone). With E edits, n contexts and S·R facts:

* ``efficacy`` = #{(edit, context): argmax logits = new answer} / (E·n);
* ``edits_stored`` = fraction of edits answered with the new answer in every context;
* ``specificity`` = #{(unedited fact, context): argmax after = argmax before} / ((S·R − E)·n) (1.0 when
  every fact was edited): the unedited facts are answered as the unedited model answered them;
* ``retained_accuracy`` = the same pairs answered with the fact table's stored answer;
* ``paraphrase`` = efficacy in contexts of other lengths, T' ∈ {max(⌊T/2⌋, 3), 2·T} (the model has no
  positions: a longer context is more noise to attend past), averaged over both;
* ``per_edit``: each edit's ids with its efficacy, paraphrase and whether it is stored.

Paper: §4.1 (every fact in fresh contexts); SPEC §2 (evaluation), §8 (beyond: editing).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Array, Int, Key, Params
from factrecall.editing.edits import Edit
from factrecall.recall.task import RecallTask, every_fact
from factrecall.recall.training import Trained, logits_of
from factrecall.recall.transformer import TransformerConfig


@functools.partial(jax.jit, static_argnums=(1, 2, 4))
def answers(
    params: Params, cfg: TransformerConfig, task: RecallTask, facts: Int[Array, "S R"], n: int, key: Key
) -> Int[Array, "n S R"]:
    """The model's answer (argmax of the logits) to every fact in ``n`` fresh contexts drawn from ``key``."""
    batch = every_fact(task, facts, n, key=key)
    return jnp.argmax(logits_of(params, batch.tokens, cfg), axis=-1).reshape(n, task.S, task.R)


def paraphrase_lengths(task: RecallTask) -> tuple[int, ...]:
    """The other context lengths: max(⌊T/2⌋, 3) and 2·T, without T itself.

    >>> paraphrase_lengths(RecallTask(4, 4, 2, 10, T=6)), paraphrase_lengths(RecallTask(4, 4, 2, 10, T=3))
    ((3, 12), (6,))
    """
    return tuple(L for L in dict.fromkeys((max(task.T // 2, 3), 2 * task.T)) if L != task.T)


def _fraction(hits: np.ndarray) -> float:
    return float(hits.mean()) if hits.size else 1.0


def edit_scores(
    before: Trained, after: Trained, edits: Sequence[Edit], n_contexts: int = 8, *, key: Key
) -> dict[str, Any]:
    """Efficacy, specificity, paraphrase and more of ``after`` (the edited ``before``) on ``edits``, each
    fact in ``n_contexts`` fresh contexts from ``key`` (see the module docstring for the definitions)."""
    task = before.task
    k_same, k_other = jax.random.split(key)
    old = np.asarray(answers(before.params, before.cfg, task, before.facts, n_contexts, k_same))
    new = np.asarray(answers(after.params, after.cfg, task, after.facts, n_contexts, k_same))
    s, r, target = (np.array([getattr(e, f) for e in edits], int) for f in ("s", "r", "new"))
    hits = new[:, s, r] == target[None, :]  # (n, E)
    unedited = np.ones((task.S, task.R), bool)
    unedited[s, r] = False
    stored_answer = np.asarray(before.facts)[None, :, :]
    para = []
    for i, L in enumerate(paraphrase_lengths(task)):
        other = task._replace(T=L)
        pred = answers(
            after.params, after.cfg, other, after.facts, n_contexts, jax.random.fold_in(k_other, i)
        )
        para.append(np.asarray(pred)[:, s, r] == target[None, :])
    para_hits = np.concatenate(para) if para else hits
    per_edit = [
        {
            "s": e.s,
            "r": e.r,
            "old": e.old,
            "new": e.new,
            "efficacy": _fraction(hits[:, i]),
            "paraphrase": _fraction(para_hits[:, i]),
            "stored": bool(hits[:, i].all()),
        }
        for i, e in enumerate(edits)
    ]
    return {
        "efficacy": _fraction(hits),
        "edits_stored": float(hits.all(axis=0).mean()),
        "specificity": _fraction((new == old)[:, unedited]),
        "retained_accuracy": _fraction((new == stored_answer)[:, unedited]),
        "paraphrase": _fraction(para_hits),
        "n_contexts": n_contexts,
        "paraphrase_lengths": list(paraphrase_lengths(task)),
        "per_edit": per_edit,
    }
