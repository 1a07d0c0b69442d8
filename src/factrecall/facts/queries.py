"""A saved table model speaks names: the fact names travel with the weights, and queries answer in them.

Owns the names of a table model. A model trained on a fact table is saved in the format of
:func:`factrecall.recall.models.save`, its names (subjects, relations, each relation's answers) in
``info["table"]`` (:func:`as_trained`); :func:`table_of` reads them back (a model of the synthetic task gets
names ``s3``, ``r1``, ``a7``). :func:`answer_queries` answers (subject, relation) pairs with the answer of
largest softmax probability averaged over random contexts, and that probability.

Paper: §4.1 (the task); SPEC §8 (train to verify, save, answer queries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from factrecall.core.base import Key, Params
from factrecall.facts.table import FactTable, from_names, names_record
from factrecall.recall.task import every_fact, recall_task
from factrecall.recall.training import Trained, logits_of
from factrecall.recall.transformer import TransformerConfig


def as_trained(
    table: FactTable,
    params: Params,
    cfg: TransformerConfig,
    record: dict[str, Any],
    T: int = 32,
) -> Trained:
    """A :class:`factrecall.recall.training.Trained` of a table model, its names and plan kept in ``info``
    (saved with it by :func:`factrecall.recall.models.save`)."""
    task, facts = recall_task(table.S, table.R, table.D, T=T), jnp.asarray(table.facts, jnp.int32)
    info = {
        "table": names_record(table),
        "plan": {k: record[k] for k in ("predicted", "criterion") if k in record},
    }
    if "attempts" in record:
        last = record["attempts"][-1]
        info |= {
            "lr": last["lr"],
            "steps": last["steps"],
            "reached": last["stored"],
            "seconds": last["seconds"],
        }
    return Trained(params, cfg, task, facts, info)


def table_of(model: Trained) -> FactTable:
    """The :class:`FactTable` saved with a model (for a model of the synthetic task: names s3, r1, a7).

    Raises:
        ConfigError: the saved names are malformed.
    """
    facts = np.asarray(model.facts).tolist()
    names = model.info.get("table")
    if names is None:  # a model trained on the synthetic task: name ids by number
        task = model.task
        names = {
            "source": "<synthetic task>",
            "subjects": [f"s{s}" for s in range(task.S)],
            "relations": [f"r{r}" for r in range(task.R)],
            "answers": [[f"a{r * task.D + j}" for j in range(task.D)] for r in range(task.R)],
        }
    return from_names(names, facts)


def answer_queries(
    model: Trained, table: FactTable, pairs: Sequence[tuple[str, str]], n_contexts: int = 8, *, key: Key
) -> list[dict[str, Any]]:
    """Answer (subject, relation) queries with a trained model: the answer whose softmax probability,
    averaged over ``n_contexts`` random contexts, is largest, and that probability.

    Raises:
        ConfigError: an unknown subject or relation name (with the closest known names).
    """
    ids = [table.ids(s, r) for s, r in pairs]  # raises before any computation
    batch = every_fact(model.task, model.facts, n_contexts, key=key)
    probs = jax.nn.softmax(logits_of(model.params, batch.tokens, model.cfg), axis=-1)
    probs = np.asarray(probs).reshape(n_contexts, table.S, table.R, -1).mean(axis=0)
    out = []
    for (subject, relation), (s, r) in zip(pairs, ids, strict=True):
        a = int(np.argmax(probs[s, r]))
        out.append(
            {
                "subject": subject,
                "relation": relation,
                "fact": table.fact_name(s, r),
                "answer": table.answer_name(a),
                "probability": float(probs[s, r, a]),
                "stored_answer": table.answer_of(s, r),
                "correct": a == table.facts[s][r],
            }
        )
    return out
