"""One editing run as users see it: apply the edits, score them, and the JSON record of ``factrecall edit``.

Owns :func:`edit_record` (the record's keys: ``method``, ``where``, ``sequential``, ``n_edits``,
``efficacy``, ``edits_stored``, ``specificity``, ``retained_accuracy``, ``paraphrase``, ``seconds``,
``delta_norm``, ``n_contexts``, ``seed``, ``facts``, ``settings`` and the method's extras, ``per_edit`` rows
with names) — the command, :func:`factrecall.api.edit` and the editing study all build it here. The edit's
fit contexts come from ``fold_in(key(seed), 0)`` and the scores' fresh contexts from ``fold_in(key(seed),
1)``, so they never share a context.

Paper: §4 (the model whose memories are edited); SPEC §8 (beyond: editing facts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax

from factrecall.core.errors import check
from factrecall.editing.edits import Edit, edit_names
from factrecall.editing.methods import Edited, EditSettings, apply_edits
from factrecall.editing.metrics import edit_scores
from factrecall.facts.queries import table_of
from factrecall.recall.training import Trained


def edit_record(
    model: Trained,
    edits: Sequence[Edit],
    method: str = "rank-one",
    where: str = "mlp",
    *,
    sequential: bool = False,
    n_contexts: int = 8,
    seed: int = 0,
    settings: EditSettings | None = None,
) -> tuple[dict[str, Any], Edited]:
    """Apply ``edits`` to ``model`` (:func:`~factrecall.editing.methods.apply_edits`) and score them
    (:func:`~factrecall.editing.metrics.edit_scores`, ``n_contexts`` fresh contexts per fact).

    Returns:
        The JSON record (see the module docstring) and the :class:`~factrecall.editing.methods.Edited`.

    Raises:
        ConfigError: a bad method, site, edit or ``n_contexts``.
        TrainingError: the edit diverged.
    """
    check(n_contexts >= 1, f"n_contexts must be ≥ 1, got {n_contexts}")
    key = jax.random.key(seed)
    edited = apply_edits(
        model, edits, method, where, sequential=sequential, key=jax.random.fold_in(key, 0), settings=settings
    )
    scores = edit_scores(model, edited.model, edits, n_contexts, key=jax.random.fold_in(key, 1))
    table = table_of(model)
    per_edit = [
        {**edit_names(e, table), **{k: v for k, v in row.items() if k not in ("s", "r", "old", "new")}}
        for e, row in zip(edits, scores.pop("per_edit"), strict=True)
    ]
    info = {k: v for k, v in edited.info.items() if k not in ("method", "where", "sequential")}
    record = {
        "method": method,
        "where": where,
        "sequential": sequential,
        "n_edits": len(edits),
        **scores,
        "seconds": edited.seconds,
        "delta_norm": edited.delta_norm,
        "seed": seed,
        "facts": model.task.n_facts,
        **info,
        "per_edit": per_edit,
    }
    return record, edited
