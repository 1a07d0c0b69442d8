"""The fact-table commands end to end: plan → train → save → query → attribute."""

import json
from pathlib import Path

import pytest

from factrecall import cli
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
    folder = tmp_path_factory.mktemp("plan")
    table = folder / "tiny.csv"
    table.write_text(TINY)
    model = folder / "tiny.npz"
    with pytest.raises(SystemExit) as exc:
        cli.main(["plan", str(table), "--train", "--save", str(model), "--json", "-q"])
    assert exc.value.code == 0
    return folder, model


def test_train_save_query_attribute(saved, capsys):
    folder, model = saved
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

    _, model = saved
    m = models.load(model)
    table = table_of(m)
    assert table.subjects == ("France", "Peru", "Japan", "Chile") and table.answer_of(3, 1) == "South America"
    assert m.info["plan"]["predicted"]["family"] in FAMILIES and m.info["plan"]["criterion"] == 1.0
