"""Edits of a trained model's facts: (subject, relation) → a new answer, read from a file or drawn at random.

Owns :class:`Edit` (ids: subject s, relation r, the new answer and the answer the model's table holds),
:func:`read_edits` (an edits file in the fact-table formats, validated against the model's names),
:func:`random_edits` (k facts, each given another answer of its relation) and the small helpers the
methods and the records share (:func:`edited_facts`, :func:`edit_names`). No JAX here.

An edit changes the answer a*(s, r) of an **existing** (subject, relation) to **another answer of relation r
already in the model's vocabulary** (an output id in r's block [r·D, (r+1)·D)). Inserting is refused with
a :class:`~factrecall.core.errors.ConfigError` naming the file, line, field and value: a new subject would
be a new input token, and the task's vocabulary is laid out as S subjects [0, S), then relations, noise and
EOS, so every id after it would move; a new answer would be a new output row inside relation r's block,
moving every later relation's answers. Both change the saved model's task and format.

Paper: §4.1 (the task: subjects, relations, answer blocks); SPEC §2 (fact tables), §8 (beyond: editing).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from factrecall.core.errors import ConfigError, check
from factrecall.facts.table import FactTable, Row, lookup, read_rows

SUPPORTED = "an edit gives an existing (subject, relation) another answer that the relation already has"
REFUSED = {
    "subject": "inserting a new subject (a new input token) is not supported",
    "relation": "adding a relation is not supported",
    "answer": "adding a new answer to a relation (a new output row) is not supported",
}


class Edit(NamedTuple):
    """One edit, in ids: fact (s, r) answered ``new`` instead of ``old``.

    Attributes:
        s: subject id in [0, S).
        r: relation id in [0, R).
        new: new answer id, in relation r's block [r·D, (r+1)·D).
        old: the answer id the model's fact table holds for (s, r).
        line: line of the edits file (0 for generated edits).
    """

    s: int
    r: int
    new: int
    old: int
    line: int = 0


def read_edits(path: str | Path, table: FactTable) -> list[Edit]:
    """The edits of a ``.csv`` / ``.jsonl`` file of rows ``subject, relation, answer``, in ids of ``table``.

    Parsing and its errors are the fact tables' (:func:`factrecall.facts.table.read_rows`: missing or
    empty fields, bad UTF-8, unknown format). Exact duplicate rows are ignored.

    Raises:
        ConfigError: naming file, line and field: an unknown subject, relation or answer (with the closest
            names; inserting is refused, see the module docstring), an answer equal to the stored one, the
            same (subject, relation) edited twice with different answers, or no rows at all.
    """
    source = str(path)
    rows = read_rows(path)
    check(bool(rows), f"{source}: no edits; expected rows of subject, relation, answer")
    kept: dict[tuple[int, int], tuple[Edit, Row]] = {}
    for row in rows:
        edit = _edit_of(row, table, source)
        if (edit.s, edit.r) in kept:
            first, first_row = kept[(edit.s, edit.r)]
            if first.new != edit.new:
                raise ConfigError(
                    f"{source}:{row.line}: field 'answer': {table.fact_name(edit.s, edit.r)} is edited "
                    f"twice, to {first_row.answer!r} (line {first.line}) and to {row.answer!r}; keep one "
                    f"edit per (subject, relation)"
                )
            continue
        kept[(edit.s, edit.r)] = (edit, row)
    return [edit for edit, _ in kept.values()]


def _edit_of(row: Row, table: FactTable, source: str) -> Edit:
    where = f"{source}:{row.line}"
    s = _named(where, "subject", row.subject, table.subjects)
    r = _named(where, "relation", row.relation, table.relations)
    new = r * table.D + _named(where, "answer", row.answer, table.answers[r], f" of {row.relation}")
    old = table.facts[s][r]
    check(
        new != old,
        f"{where}: field 'answer': {row.answer!r} is already the answer of {table.fact_name(s, r)}; "
        f"an edit must change the answer",
    )
    return Edit(s, r, new, old, row.line)


def _named(where: str, field: str, value: str, names: Sequence[str], of: str = "") -> int:
    try:
        return lookup(field + of, value, names)
    except ConfigError as exc:
        raise ConfigError(f"{where}: field {field!r}: {exc}; {REFUSED[field]}: {SUPPORTED}") from None


def random_edits(facts: Any, D: int, k: int, *, seed: int) -> list[Edit]:
    """``k`` distinct facts (s, r) drawn uniformly, each given a new answer uniform among the other D − 1
    answers of its relation (``numpy.random.default_rng(seed)``).

    >>> facts = np.array([[0, 2], [1, 3]])
    >>> [(e.s, e.r, e.old, e.new) for e in random_edits(facts, 2, 2, seed=0)]
    [(1, 0, 1, 0), (1, 1, 3, 2)]

    Raises:
        ConfigError: k outside [1, S·R] or D < 2 (no other answer to move to).
    """
    facts = np.asarray(facts)
    S, R = facts.shape
    check(1 <= k <= S * R, f"number of edits k must be in [1, S·R = {S * R}], got {k}")
    check(D >= 2, f"answers per relation D must be ≥ 2 to edit a fact (another answer is needed), got {D}")
    rng = np.random.default_rng(seed)
    picks = rng.choice(S * R, size=k, replace=False)
    offsets = rng.integers(0, D - 1, size=k)
    edits = []
    for index, j in zip(picks.tolist(), offsets.tolist(), strict=True):
        s, r = divmod(index, R)
        old = int(facts[s, r])
        edits.append(Edit(s, r, r * D + (j if j < old - r * D else j + 1), old, 0))
    return edits


def edited_facts(facts: Any, edits: Sequence[Edit]) -> np.ndarray:
    """The S×R answer ids with each edit's (s, r) answered ``new`` (a copy, int32)."""
    out = np.array(facts, dtype=np.int32)
    for e in edits:
        out[e.s, e.r] = e.new
    return out


def edit_names(edit: Edit, table: FactTable) -> dict[str, Any]:
    """An edit in names (JSON-ready): fact, subject, relation, old and new answer, line."""
    return {
        "fact": table.fact_name(edit.s, edit.r),
        "subject": table.subjects[edit.s],
        "relation": table.relations[edit.r],
        "old": table.answer_name(edit.old),
        "new": table.answer_name(edit.new),
        "line": edit.line,
    }
