"""The fact-table commands end to end: plan → train → save → query → attribute."""

import contextlib
import io
import json
from pathlib import Path

import pytest

from factrecall import cli
from factrecall.cli.facts import _plan_text
from factrecall.facts.scaling import FAMILIES

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TINY = """subject,relation,answer
France,capital_of,Paris
France,continent_of,Europe
Peru,capital_of,Lima
Peru,continent_of,South America
Japan,capital_of,Tokyo
Japan,continent_of,Asia
Chile,capital_of,Santiago
Chile,continent_of,South America
"""


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_plan_predicts_a_shape_with_a_band_for_the_examples(capsys):
    code, out, err = run_cli(capsys, "plan", str(EXAMPLES / "countries.csv"), "--json")
    assert code == 0, err
    r = json.loads(out)
    p = r["predicted"]
    assert r["table"]["facts"] == 330 and r["bits"] == pytest.approx(r["table"]["bits"])
    assert (
        set(p["shape"]) == {"d", "H", "d_h", "m"} and p["attention_params"] + p["mlp_params"] == p["params"]
    )
    assert p["band_params"][0] < p["params_needed"] < p["band_params"][1]
    assert r["scaling_data"]["rows"] >= 4 and r["run"]["versions"]["jax"]
    code, out, err = run_cli(capsys, "plan", str(EXAMPLES / "countries.jsonl"), "--budget-params", "100")
    assert code == 2 and "over the budget of 100" in err and out == ""


def test_bad_inputs_exit_2_and_write_nothing(capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("subject,relation,answer\nFrance,capital_of,Paris\nFrance,capital_of,Lyon\n")
    model = tmp_path / "m.npz"
    code, _, err = run_cli(capsys, "plan", str(bad), "--train", "--save", str(model), "-q")
    assert code == 2 and f"{bad}:3: capital_of(France) has two answers" in err and not model.exists()
    code, _, err = run_cli(capsys, "plan", str(EXAMPLES / "countries.csv"), "--save", str(model))
    assert code == 2 and "--save needs --train" in err and not model.exists()
    code, _, err = run_cli(capsys, "query", str(model), "--subject", "France", "--relation", "capital_of")
    assert code == 2 and "does not exist" in err


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """``plan --criterion 1.0 --train --save --json`` on the tiny table: (folder, model path, JSON record)."""
    folder = tmp_path_factory.mktemp("plan")
    table = folder / "tiny.csv"
    table.write_text(TINY)
    model = folder / "tiny.npz"
    out = io.StringIO()
    argv = ["plan", str(table), "--criterion", "1.0", "--train", "--save", str(model), "--json", "-q"]
    with pytest.raises(SystemExit) as exc, contextlib.redirect_stdout(out):
        cli.main(argv)
    assert exc.value.code == 0
    return folder, model, json.loads(out.getvalue())


def test_plan_at_criterion_1_stores_every_fact_in_fresh_contexts(saved, capsys):
    _, model, record = saved
    v, last = record["verified"], record["attempts"][-1]
    assert v["fact_accuracy"] == 1.0 and v["n_missed"] == 0 and v["missed"] == [] and v["eval_contexts"] == 8
    assert last["stored"] and last["verified"] == 1.0 and last["n_missed"] == 0
    assert all(not a["stored"] for a in record["attempts"][:-1])
    assert record["saved"] == str(model) and model.exists()
    _plan_text(record)  # what the command prints without --json
    text = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    tried = f"tried d={last['shape']['d']}, H={last['shape']['H']}"
    assert tried in text and "1.0000 in training, 1.0000 in fresh contexts (0 facts missed)" in text


def test_plan_that_stores_nothing_names_the_missed_facts_exits_1_and_saves_nothing(
    capsys, tmp_path, monkeypatch
):
    from factrecall.facts import planner

    def trained(job, d):  # every shape meets the criterion in the in-loop contexts
        return planner.Attempt(job.family.shape(d), job.family.params(d), True, 1.0, 0.01, 256, 0.0), {}, None

    def fresh(params, cfg, **_):  # and misses 12 facts in fresh ones
        names = [f"capital_of(s{i})" for i in range(12)]
        return {"fact_accuracy": 0.9, "missed": names[:10], "n_missed": 12}

    monkeypatch.setattr(planner, "_attempt", trained)
    monkeypatch.setattr(planner, "evaluate_table", fresh)
    table, model = tmp_path / "tiny.csv", tmp_path / "m.npz"
    table.write_text(TINY)
    argv = ["plan", str(table), "--train", "--max-tries", "2", "--save", str(model), "--json", "-q"]
    code, out, err = run_cli(capsys, *argv)
    assert code == 1 and out == "" and not model.exists() and list(tmp_path.iterdir()) == [table]
    assert err.startswith("error: no shape stored the table at criterion 1.0: tried d=")
    assert err.count("(1.0000 in training, 0.9000 in fresh contexts)") == 2
    names = ", ".join(f"capital_of(s{i})" for i in range(10))
    assert f"missed {names} and 2 more in fresh contexts" in err


def test_train_save_query_attribute(saved, capsys):
    folder, model, _ = saved
    assert model.exists()
    code, out, err = run_cli(
        capsys, "query", str(model), "--subject", "Peru", "--relation", "capital_of", "--json"
    )
    assert code == 0, err
    r = json.loads(out)
    assert r["answer"] == "Lima" and 0.5 < r["probability"] <= 1.0 and r["fact"] == "capital_of(Peru)"
    queries = folder / "q.jsonl"
    queries.write_text(
        '{"subject": "Chile", "relation": "continent_of"}\n{"subject": "Japan", "relation": "capital_of"}\n'
    )
    code, out, err = run_cli(capsys, "query", str(model), "--batch", str(queries), "--json")
    assert code == 0, err
    answers = [q["answer"] for q in json.loads(out)["queries"]]
    assert answers == ["South America", "Tokyo"]
    code, _, err = run_cli(capsys, "query", str(model), "--subject", "Peur", "--relation", "capital_of")
    assert code == 2 and "unknown subject 'Peur'; did you mean 'Peru'" in err
    code, out, err = run_cli(capsys, "attribute", str(model), "--json")
    assert code == 0, err
    a = json.loads(out)
    assert a["facts"] == 8 and a["stored"] == 8
    names = [n for group in a["facts_by_path"].values() for n in group]
    assert sorted(names) == sorted(
        f"{r}({s})" for s in ("France", "Peru", "Japan", "Chile") for r in ("capital_of", "continent_of")
    )
    assert len(a["surviving_head_ablation"]) >= 1


def test_saved_model_keeps_the_table_and_plan(saved):
    from factrecall.facts.queries import table_of
    from factrecall.recall import models

    _, model, _ = saved
    m = models.load(model)
    table = table_of(m)
    assert table.subjects == ("France", "Peru", "Japan", "Chile") and table.answer_of(3, 1) == "South America"
    assert m.info["plan"]["predicted"]["family"] in FAMILIES and m.info["plan"]["criterion"] == 1.0
    # the sequence length it was trained and verified at, which eval and query then use
    from factrecall.facts.planner import DEFAULT_RECIPE

    assert m.task.T == DEFAULT_RECIPE.T
