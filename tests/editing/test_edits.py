"""Edits files: the fact-table parsing rules, the errors naming file, line and field (inserting is refused),
and random edits."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from factrecall.core.errors import ConfigError
from factrecall.editing.edits import Edit, edit_names, edited_facts, random_edits, read_edits
from factrecall.facts.table import Row, build

TABLE = build(
    [
        Row(*fields, line)
        for line, fields in enumerate(
            [
                ("France", "capital_of", "Paris"),
                ("France", "continent_of", "Europe"),
                ("Peru", "capital_of", "Lima"),
                ("Peru", "continent_of", "South America"),
                ("Japan", "capital_of", "Tokyo"),
                ("Japan", "continent_of", "Asia"),
            ],
            start=2,
        )
    ],
    "countries.csv",
)
HEADER = "subject,relation,answer\n"


def edits_of(tmp_path, text, name="edits.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path, read_edits(path, TABLE)


def test_edits_are_read_in_ids_and_exact_duplicates_ignored(tmp_path):
    _, edits = edits_of(
        tmp_path, HEADER + "Peru,capital_of,Tokyo\nJapan,continent_of,Europe\nPeru,capital_of,Tokyo\n"
    )
    D = TABLE.D
    assert edits == [Edit(1, 0, 0 * D + 2, 0 * D + 1, 2), Edit(2, 1, 1 * D + 0, 1 * D + 2, 3)]
    assert edit_names(edits[0], TABLE) == {
        "fact": "capital_of(Peru)",
        "subject": "Peru",
        "relation": "capital_of",
        "old": "Lima",
        "new": "Tokyo",
        "line": 2,
    }
    _, jsonl = edits_of(
        tmp_path, '{"subject": "Peru", "relation": "capital_of", "answer": "Tokyo"}\n', "e.jsonl"
    )
    assert jsonl == [edits[0]._replace(line=1)]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "Peru,capitol_of,Tokyo",
            r"edits.csv:2: field 'relation': unknown relation 'capitol_of'; did you mean 'capital_of'",
        ),
        ("Peru,,Tokyo", r"edits.csv:2: field 'relation' is empty"),
        (
            "Atlantis,capital_of,Paris",
            r"edits.csv:2: field 'subject': unknown subject 'Atlantis'.*inserting a new subject",
        ),
        (
            "Peru,capital_of,Rome",
            r"edits.csv:2: field 'answer': unknown answer of capital_of 'Rome'.*new answer to a relation",
        ),
        (
            "Peru,capital_of,Lima",
            r"edits.csv:2: field 'answer': 'Lima' is already the answer of capital_of\(Peru\)",
        ),
    ],
)
def test_bad_rows_name_file_line_and_field(tmp_path, row, message):
    with pytest.raises(ConfigError, match=message):
        edits_of(tmp_path, HEADER + row + "\n")


def test_the_same_fact_edited_twice_with_different_answers(tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"edits.csv:3: field 'answer': capital_of\(Peru\) is edited twice, to 'Tokyo' \(line 2\) and "
        r"to 'Paris'",
    ):
        edits_of(tmp_path, HEADER + "Peru,capital_of,Tokyo\nPeru,capital_of,Paris\n")
    with pytest.raises(ConfigError, match="no edits"):
        edits_of(tmp_path, HEADER)


@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 12), D=st.integers(2, 5))
def test_random_edits_change_k_distinct_facts_within_their_blocks(seed, k, D):
    facts = np.arange(4)[None, :] * D + np.random.default_rng(seed).integers(0, D, (3, 4))
    edits = random_edits(facts, D, k, seed=seed)
    assert len({(e.s, e.r) for e in edits}) == k and edits == random_edits(facts, D, k, seed=seed)
    for e in edits:
        assert e.old == facts[e.s, e.r] != e.new and e.new // D == e.r and e.line == 0
    changed = edited_facts(facts, edits) != facts
    assert changed.sum() == k


def test_random_edits_refuse_impossible_requests():
    with pytest.raises(ConfigError, match=r"k must be in \[1, S·R = 4\], got 5"):
        random_edits(np.zeros((2, 2), int), 2, 5, seed=0)
    with pytest.raises(ConfigError, match="D must be ≥ 2"):
        random_edits(np.zeros((2, 2), int), 1, 1, seed=0)
