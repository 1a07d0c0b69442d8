"""A user's fact table — rows of (subject, relation, answer) from CSV or JSONL — as a recall task with names.

The synthetic task of SPEC §2 has S subjects, R relations and D answers per relation; relation r owns the
output ids [r·D, (r+1)·D). A table maps onto it as follows:

* subjects and relations get ids in order of first appearance; ``fact_name(s, r)`` is ``relation(subject)``,
  e.g. ``capital_of(France)``;
* each relation's distinct answers get slots in its own block, in order of first appearance; D is the
  **largest** answer count over relations, and a relation with fewer answers leaves the rest of its block
  unused (those slots are never a target, so they cost output rows but no bits);
* an answer name used by several relations (``Paris`` as ``capital_of`` and ``largest_city_of``) is
  **allowed and reported** (:attr:`FactTable.shared_answers`): it becomes one answer token per relation,
  because the paper's constructions assume disjoint answer sets. Nothing is merged, so every stored fact
  still has exactly one correct output id;
* every subject must have an answer for every relation: the task trains on all S·R pairs (a missing pair
  is an error naming it, not a silent hole).

Bad input raises :class:`ConfigError` naming the file and line: missing or empty fields, one (subject,
relation) with two different answers, bytes that are not UTF-8, an empty file, an unknown format.
No JAX here: callers turn :attr:`FactTable.facts` into an array.

Paper: §4.1 (the task), SPEC §2 (beyond: user fact tables), §5 (bits of a table).
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from factrecall.core.errors import ConfigError, check

FIELDS = ("subject", "relation", "answer")
FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class Row(NamedTuple):
    """One (subject, relation, answer) row and the line it came from."""

    subject: str
    relation: str
    answer: str
    line: int


class FactTable(NamedTuple):
    """A validated fact table: names and the S×R grid of answer ids (relation r's answers in [r·D, r·D+D_r)).

    Attributes:
        subjects: S subject names, in order of first appearance.
        relations: R relation names.
        answers: for each relation, its D_r distinct answer names (slot j is output id r·D + j).
        facts: S×R answer ids a*(s, r).
        source: where the table came from (file name) for messages.
        shared_answers: answer names that appear under more than one relation (reported, kept apart).
        duplicates: rows repeating an earlier row exactly (ignored).
    """

    subjects: tuple[str, ...]
    relations: tuple[str, ...]
    answers: tuple[tuple[str, ...], ...]
    facts: tuple[tuple[int, ...], ...]
    source: str = "<table>"
    shared_answers: tuple[str, ...] = ()
    duplicates: int = 0

    @property
    def S(self) -> int:
        return len(self.subjects)

    @property
    def R(self) -> int:
        return len(self.relations)

    @property
    def D(self) -> int:
        """Answers per relation in the task: the largest count D_r over relations."""
        return max(len(a) for a in self.answers)

    @property
    def n_facts(self) -> int:
        return self.S * self.R

    @property
    def answer_counts(self) -> tuple[int, ...]:
        """D_r for each relation."""
        return tuple(len(a) for a in self.answers)

    @property
    def bits(self) -> float:
        """Bits the table holds: Σ_r S·log2 D_r (each answer picked among its relation's D_r; SPEC §5)."""
        return sum(self.S * math.log2(n) for n in self.answer_counts)

    @property
    def task_bits(self) -> float:
        """Bits of the padded task, S·R·log2 D (≥ :attr:`bits`; equal when every D_r = D)."""
        return self.n_facts * math.log2(self.D)

    def fact_name(self, s: int, r: int) -> str:
        """``relation(subject)``, e.g. ``capital_of(France)``."""
        return f"{self.relations[r]}({self.subjects[s]})"

    def answer_name(self, a: int) -> str:
        """The name of output id ``a`` (an unused slot reads ``<unused slot j of relation>``)."""
        r, j = divmod(int(a), self.D)
        check(0 <= r < self.R, f"answer id {a} is outside [0, {self.R * self.D})")
        names = self.answers[r]
        return names[j] if j < len(names) else f"<unused slot {j} of {self.relations[r]}>"

    def answer_of(self, s: int, r: int) -> str:
        """The stored answer name of fact (s, r)."""
        return self.answer_name(self.facts[s][r])

    def ids(self, subject: str, relation: str) -> tuple[int, int]:
        """(s, r) of a subject and relation name.

        Raises:
            ConfigError: an unknown name, with the closest known names.
        """
        return lookup("subject", subject, self.subjects), lookup("relation", relation, self.relations)

    def summary(self) -> dict[str, object]:
        """Sizes and notes of the table for reports (JSON-ready)."""
        return {
            "source": self.source,
            "S": self.S,
            "R": self.R,
            "D": self.D,
            "facts": self.n_facts,
            "answers_per_relation": dict(zip(self.relations, self.answer_counts, strict=True)),
            "bits": self.bits,
            "task_bits": self.task_bits,
            "shared_answers": list(self.shared_answers),
            "shared_answers_note": "an answer shared by relations is one output token per relation",
            "duplicate_rows": self.duplicates,
        }


def lookup(kind: str, name: str, names: Sequence[str]) -> int:
    """The index of ``name`` in ``names``; a :class:`ConfigError` naming the closest known names otherwise."""
    try:
        return names.index(name)
    except ValueError:
        close = difflib.get_close_matches(name, names, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        shown = ", ".join(map(repr, names[:8])) + (", …" if len(names) > 8 else "")
        raise ConfigError(f"unknown {kind} {name!r}{hint} (known: {shown})") from None


def build(rows: Iterable[Row], source: str = "<table>") -> FactTable:
    """The :class:`FactTable` of ``rows``, validated (see the module docstring).

    >>> t = build([Row("France", "capital_of", "Paris", 1), Row("Peru", "capital_of", "Lima", 2)])
    >>> t.S, t.R, t.D, t.fact_name(1, 0), t.answer_of(1, 0)
    (2, 1, 2, 'capital_of(Peru)', 'Lima')

    Raises:
        ConfigError: an empty table, a conflicting answer, or a missing (subject, relation) pair.
    """
    subjects: dict[str, int] = {}
    relations: dict[str, int] = {}
    answers: list[dict[str, int]] = []
    seen: dict[tuple[int, int], tuple[str, int]] = {}
    duplicates = 0
    for row in rows:
        s = subjects.setdefault(row.subject, len(subjects))
        if row.relation not in relations:
            relations[row.relation] = len(relations)
            answers.append({})
        r = relations[row.relation]
        if (s, r) in seen:
            first, line = seen[(s, r)]
            if first != row.answer:
                raise ConfigError(
                    f"{source}:{row.line}: {row.relation}({row.subject}) has two answers: {first!r} "
                    f"(line {line}) and {row.answer!r}; keep one answer per (subject, relation)"
                )
            duplicates += 1
            continue
        seen[(s, r)] = (row.answer, row.line)
        answers[r].setdefault(row.answer, len(answers[r]))
    check(bool(seen), f"{source}: the table is empty; expected rows of {', '.join(FIELDS)}")
    _check_complete(seen, list(subjects), list(relations), source)
    D = max(len(a) for a in answers)
    facts = tuple(
        tuple(r * D + answers[r][seen[(s, r)][0]] for r in range(len(relations)))
        for s in range(len(subjects))
    )
    count: dict[str, int] = {}
    for names in answers:
        for name in names:
            count[name] = count.get(name, 0) + 1
    return FactTable(
        subjects=tuple(subjects),
        relations=tuple(relations),
        answers=tuple(tuple(a) for a in answers),
        facts=facts,
        source=source,
        shared_answers=tuple(n for n, c in count.items() if c > 1),
        duplicates=duplicates,
    )


def _check_complete(
    seen: dict[tuple[int, int], tuple[str, int]], subjects: list[str], relations: list[str], source: str
) -> None:
    missing = [(s, r) for s in range(len(subjects)) for r in range(len(relations)) if (s, r) not in seen]
    if missing:
        shown = ", ".join(f"{relations[r]}({subjects[s]})" for s, r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise ConfigError(
            f"{source}: {len(missing)} of {len(subjects) * len(relations)} (subject, relation) pairs have no "
            f"answer: {shown}{more}; every subject needs an answer for every relation (the task trains on "
            f"all S·R pairs): add the rows or drop the subject"
        )


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{source}:{line}: byte {data[exc.start]:#04x} is not UTF-8 ({exc.reason}); "
            "save the file as UTF-8"
        ) from None


def _field(value: object, name: str, source: str, line: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfigError(
            f"{source}:{line}: field {name!r} must be a string, got {type(value).__name__} {value!r}"
        )
    text = str(value).strip()
    check(bool(text), f"{source}:{line}: field {name!r} is empty; every row needs {', '.join(FIELDS)}")
    return text


def parse_csv(text: str, source: str = "<csv>", fields: tuple[str, ...] = FIELDS) -> list[Row]:
    """Rows of a CSV text with a header naming ``fields`` (default ``subject``, ``relation``, ``answer``; any
    order, other columns ignored, blank lines skipped). A field left out of ``fields`` reads as ``""``.

    >>> parse_csv("subject,relation,answer\\nFrance,capital_of,Paris\\n")
    [Row(subject='France', relation='capital_of', answer='Paris', line=2)]
    """
    wanted = fields
    reader = csv.reader(io.StringIO(text, newline=""))
    header: list[str] | None = None
    rows = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells):
                continue
            if header is None:
                header = [c.strip().lower() for c in cells]
                missing = [f for f in wanted if f not in header]
                check(
                    not missing,
                    f"{source}:{line}: the header {cells} lacks column(s) {missing}; expected a header "
                    f"naming {', '.join(wanted)}",
                )
                continue
            check(
                len(cells) == len(header),
                f"{source}:{line}: {len(cells)} fields, expected {len(header)} ({', '.join(header)})",
            )
            values = [_field(cells[header.index(f)], f, source, line) if f in wanted else "" for f in FIELDS]
            rows.append(Row(*values, line))
    except csv.Error as exc:
        raise ConfigError(f"{source}:{reader.line_num}: not valid CSV ({exc})") from None
    return rows


def parse_jsonl(text: str, source: str = "<jsonl>", fields: tuple[str, ...] = FIELDS) -> list[Row]:
    """Rows of a JSON-lines text: one object per line with keys ``fields`` (default ``subject``,
    ``relation``, ``answer``). A field left out of ``fields`` reads as ``""``.

    >>> parse_jsonl('{"subject": "Peru", "relation": "capital_of", "answer": "Lima"}')
    [Row(subject='Peru', relation='capital_of', answer='Lima', line=1)]
    """
    rows = []
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{source}:{line}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        check(
            isinstance(obj, dict),
            f"{source}:{line}: expected a JSON object with keys {', '.join(fields)}, "
            f"got {type(obj).__name__}",
        )
        missing = [f for f in fields if f not in obj]
        check(not missing, f"{source}:{line}: missing key(s) {missing}; every row needs {', '.join(fields)}")
        rows.append(Row(*(_field(obj[f], f, source, line) if f in fields else "" for f in FIELDS), line))
    return rows


def read_rows(path: str | Path, fields: tuple[str, ...] = FIELDS) -> list[Row]:
    """The rows of a ``.csv`` or ``.jsonl`` file holding ``fields`` (queries need only subject and relation).

    Raises:
        ConfigError: a missing file, an unknown extension, or invalid content (file and line named).
    """
    path = Path(path)
    check(path.is_file(), f"fact table {str(path)!r} does not exist")
    kind = FORMATS.get(path.suffix.lower())
    check(
        kind is not None,
        f"fact table {str(path)!r}: unknown format {path.suffix!r}; expected one of {', '.join(FORMATS)}",
    )
    text = _decode(path.read_bytes(), str(path))
    check(bool(text.strip()), f"{path}: the file is empty; expected rows of {', '.join(FIELDS)}")
    return parse_csv(text, str(path), fields) if kind == "csv" else parse_jsonl(text, str(path), fields)


def load_table(path: str | Path) -> FactTable:
    """Read and validate a fact table from a ``.csv`` or ``.jsonl`` file.

    Raises:
        ConfigError: a missing file, an unknown extension, or invalid content (file and line named).
    """
    return build(read_rows(path), str(path))


def names_record(table: FactTable) -> dict[str, Any]:
    """The names of ``table`` as JSON (saved with a model so that queries speak names)."""
    return {
        "source": table.source,
        "subjects": list(table.subjects),
        "relations": list(table.relations),
        "answers": [list(a) for a in table.answers],
        "shared_answers": list(table.shared_answers),
    }


def from_names(record: dict[str, Any], facts: Sequence[Sequence[int]]) -> FactTable:
    """The :class:`FactTable` of a :func:`names_record` and its S×R answer ids (as saved with a model).

    Raises:
        ConfigError: the names do not match the ids' shape.
    """
    try:
        table = FactTable(
            subjects=tuple(record["subjects"]),
            relations=tuple(record["relations"]),
            answers=tuple(tuple(a) for a in record["answers"]),
            facts=tuple(tuple(int(a) for a in row) for row in facts),
            source=str(record.get("source", "<model>")),
            shared_answers=tuple(record.get("shared_answers", ())),
        )
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"the saved fact names are malformed ({exc!r})") from None
    check(
        len(table.facts) == table.S and all(len(r) == table.R for r in table.facts),
        f"the saved names ({table.S} subjects × {table.R} relations) do not match the saved facts",
    )
    return table
