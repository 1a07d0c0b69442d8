import csv
import io
import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factrecall.core.errors import ConfigError
from factrecall.facts import table as facts

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
names = st.text(st.characters(codec="utf-8", exclude_categories=("C", "Z")), min_size=1, max_size=6)


@st.composite
def tables(draw):
    """A complete random table: S subjects × R relations, each relation with its own answer names."""
    subjects = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    relations = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    pools = [draw(st.lists(names, min_size=1, max_size=5, unique=True)) for _ in relations]
    grid = {(s, r): draw(st.sampled_from(pools[i])) for s in subjects for i, r in enumerate(relations)}
    return subjects, relations, grid


def _csv(grid, order):
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["relation", "answer", "subject"])  # columns in any order
    for s, r in order:
        w.writerow([r, grid[(s, r)], s])
    return out.getvalue()


@given(tables(), st.randoms(use_true_random=False))
def test_round_trip_keeps_every_name_and_fact(table, rnd):
    subjects, relations, grid = table
    order = list(grid)
    rnd.shuffle(order)
    t = facts.build(facts.parse_csv(_csv(grid, order)))
    assert set(t.subjects) == set(subjects) and set(t.relations) == set(relations)
    assert (t.S, t.R) == (len(subjects), len(relations))
    for (s, r), a in grid.items():
        si, ri = t.ids(s, r)
        assert t.answer_of(si, ri) == a
        assert t.fact_name(si, ri) == f"{r}({s})"
        # the answer id lives in relation r's block and below its answer count
        assert t.facts[si][ri] // t.D == ri and t.facts[si][ri] % t.D < t.answer_counts[ri]
    assert t.D == max(t.answer_counts)
    assert t.bits <= t.task_bits + 1e-9
    counts = {r: len({grid[(s, r)] for s in subjects}) for r in relations}
    assert t.answer_counts == tuple(counts[r] for r in t.relations)
    assert abs(t.bits - sum(len(subjects) * math.log2(c) for c in counts.values())) < 1e-9


@given(tables())
def test_jsonl_and_csv_agree(table):
    _, _, grid = table
    jl = "\n".join(json.dumps({"subject": s, "relation": r, "answer": a}) for (s, r), a in grid.items())
    a = facts.build(facts.parse_jsonl(jl))
    b = facts.build(facts.parse_csv(_csv(grid, list(grid))))
    assert a == b


def test_examples_load_in_both_formats():
    a = facts.load_table(EXAMPLES / "countries.csv")
    b = facts.load_table(EXAMPLES / "countries.jsonl")
    assert a._replace(source="") == b._replace(source="")
    assert a.n_facts >= 300 and a.R == 5
    s, r = a.ids("France", "capital_of")
    assert a.answer_of(s, r) == "Paris"
    s, r = a.ids("United States", "capital_of")
    assert a.answer_of(s, r) == "Washington, D.C."  # a quoted comma survives
    assert a.answer_counts[a.relations.index("drives_on")] == 2
    assert a.answer_name(a.relations.index("drives_on") * a.D + 5).startswith("<unused slot 5")


def test_shared_answer_is_reported_and_kept_apart():
    rows = "subject,relation,answer\nFrance,capital_of,Paris\nFrance,largest_city_of,Paris\n"
    t = facts.build(facts.parse_csv(rows))
    assert t.shared_answers == ("Paris",)
    assert t.facts[0][0] != t.facts[0][1]  # one token per relation
    assert t.answer_of(0, 0) == t.answer_of(0, 1) == "Paris"


def test_duplicate_rows_are_counted_not_errors():
    rows = "subject,relation,answer\nPeru,capital_of,Lima\nPeru,capital_of,Lima\n"
    assert facts.build(facts.parse_csv(rows)).duplicates == 1


def _write(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("t.csv", "", r"t.csv: the file is empty"),
        ("t.csv", "subject,relation,answer\n\n", r"t.csv: the table is empty"),
        (
            "t.csv",
            "subject,relation\nFrance,capital_of\n",
            r"t.csv:1: the header .* lacks column\(s\) \['answer'\]",
        ),
        ("t.csv", "subject,relation,answer\nFrance,capital_of,\n", r"t.csv:2: field 'answer' is empty"),
        ("t.csv", "subject,relation,answer\nFrance,capital_of\n", r"t.csv:2: 2 fields, expected 3"),
        (
            "t.csv",
            "subject,relation,answer\nFrance,capital_of,Paris\nPeru,capital_of,Lima\nFrance,capital_of,Lyon\n",
            r"t.csv:4: capital_of\(France\) has two answers: 'Paris' \(line 2\) and 'Lyon'",
        ),
        (
            "t.csv",
            "subject,relation,answer\nFrance,capital_of,Paris\nPeru,currency_of,Sol\n",
            r"2 of 4 \(subject, relation\) pairs have no answer: currency_of\(France\), capital_of\(Peru\)",
        ),
        (
            "t.csv",
            b"subject,relation,answer\nFrance,capital_of,Par\xe9s\n",
            r"t.csv:2: byte 0xe9 is not UTF-8",
        ),
        (
            "t.jsonl",
            '{"subject": "France", "relation": "capital_of"}\n',
            r"t.jsonl:1: missing key\(s\) \['answer'\]",
        ),
        ("t.jsonl", '\n{"subject": "France",\n', r"t.jsonl:2: not valid JSON"),
        ("t.jsonl", '["France", "capital_of", "Paris"]\n', r"t.jsonl:1: expected a JSON object"),
        (
            "t.jsonl",
            '{"subject": "France", "relation": "capital_of", "answer": "  "}',
            r"t.jsonl:1: field 'answer'",
        ),
        (
            "t.jsonl",
            '{"subject": null, "relation": "capital_of", "answer": "Paris"}',
            r"must be a string, got NoneType",
        ),
        ("t.txt", "a,b,c\n", r"unknown format '.txt'; expected one of .csv, .jsonl"),
    ],
)
def test_bad_tables_name_file_and_line(tmp_path, name, content, match):
    path = _write(tmp_path, name, content)
    with pytest.raises(ConfigError, match=match):
        facts.load_table(path)


def test_missing_file_and_unknown_names(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        facts.load_table(tmp_path / "nope.csv")
    t = facts.load_table(EXAMPLES / "countries.csv")
    with pytest.raises(ConfigError, match=r"unknown subject 'Frnace'; did you mean 'France'"):
        t.ids("Frnace", "capital_of")
    with pytest.raises(ConfigError, match=r"unknown relation 'capital'"):
        t.ids("France", "capital")
