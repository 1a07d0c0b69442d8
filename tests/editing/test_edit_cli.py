"""``factrecall edit`` end to end: the record, the saved model read back by ``eval`` and ``query``, the Python
API's identical record, and bad inputs (exit 2, nothing written).

The model is ``edit_model`` (tests/editing/conftest.py: the suite's tiny transformer with D = 8), saved as
``factrecall train transformer --save`` saves it (:func:`factrecall.recall.models.save`).
"""

import json

import pytest

import factrecall
from factrecall import cli
from factrecall.editing.edits import edit_names, random_edits
from factrecall.facts.queries import table_of
from factrecall.recall import models

VOLATILE = {"run", "seconds", "saved", "model"}


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.fixture(scope="module")
def saved(tmp_path_factory, edit_model):
    """(folder, model path, edits path, the edit in names)."""
    folder = tmp_path_factory.mktemp("edit")
    path = folder / "model.npz"
    models.save(path, edit_model)
    model = models.load(path)
    names = edit_names(random_edits(model.facts, model.task.D, 1, seed=0)[0], table_of(model))
    edits = folder / "edits.csv"
    edits.write_text(f"subject,relation,answer\n{names['subject']},{names['relation']},{names['new']}\n")
    return folder, path, edits, names


def test_edit_saves_a_model_that_eval_and_query_read(saved, capsys):
    folder, path, edits, names = saved
    out_path = folder / "edited.npz"
    code, out, err = run_cli(
        capsys, "edit", str(path), "--edits", str(edits), "--save", str(out_path), "--json"
    )
    assert code == 0, err
    r = json.loads(out)
    assert {"efficacy", "specificity", "paraphrase", "edits_stored", "retained_accuracy", "seconds"} <= set(r)
    assert {"delta_norm", "method", "where", "sequential", "n_edits", "per_edit", "saved"} <= set(r)
    assert (r["method"], r["where"], r["n_edits"], r["efficacy"]) == ("rank-one", "mlp", 1, 1.0)
    (row,) = r["per_edit"]
    assert {k: row[k] for k in names} == {**names, "line": 2} and row["stored"] and r["specificity"] >= 0.99
    code, out, err = run_cli(capsys, "eval", str(out_path), "--json")
    assert code == 0 and json.loads(out)["fact_accuracy"] >= 0.99, err  # scored against the edited facts
    code, out, err = run_cli(
        capsys,
        "query",
        str(out_path),
        "--subject",
        names["subject"],
        "--relation",
        names["relation"],
        "--json",
    )
    assert code == 0 and json.loads(out)["answer"] == names["new"], err
    assert models.load(out_path).info["edits"] == [
        {**{k: names[k] for k in ("subject", "relation", "old", "new")}, "method": "rank-one", "where": "mlp"}
    ]
    code, out, err = run_cli(capsys, "edit", str(path), "--edits", str(edits))
    assert code == 0 and "efficacy" in out and names["fact"] in out, err


def test_the_api_computes_the_command_record(saved, capsys):
    _, path, edits, names = saved
    code, out, err = run_cli(capsys, "edit", str(path), "--edits", str(edits), "--method", "batch", "--json")
    assert code == 0, err
    result = factrecall.edit(path, edits, method="batch")
    numbers = {k: v for k, v in result.to_dict().items() if k not in VOLATILE}
    assert numbers == {k: v for k, v in json.loads(out).items() if k not in VOLATILE}
    assert result.model.info["edits"][0]["new"] == names["new"] and result.kind == "edit"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("subject,relation,answer\ns1,r9,a3\n", "edits.csv:2: field 'relation': unknown relation 'r9'"),
        ("subject,relation,answer\ns1,,a3\n", "edits.csv:2: field 'relation' is empty"),
        (
            "subject,relation,answer\ns1,r0,a2\ns1,r0,a3\n",
            "edits.csv:3: field 'answer': r0(s1) is edited twice",
        ),
        (
            "subject,relation,answer\ns9,r0,a1\n",
            "inserting a new subject (a new input token) is not supported",
        ),
    ],
)
def test_bad_edit_files_exit_2_and_write_nothing(saved, capsys, tmp_path, content, message):
    _, path, _, _ = saved
    bad = tmp_path / "edits.csv"
    bad.write_text(content)
    out_path = tmp_path / "out.npz"
    code, out, err = run_cli(capsys, "edit", str(path), "--edits", str(bad), "--save", str(out_path))
    assert code == 2 and err.startswith("error: ") and message in err and out == ""
    assert not out_path.exists()


def test_a_file_that_is_not_a_model_and_bad_flags_exit_2(saved, capsys, tmp_path):
    _, _, edits, _ = saved
    out_path = tmp_path / "out.npz"
    code, _, err = run_cli(capsys, "edit", str(edits), "--edits", str(edits), "--save", str(out_path))
    assert code == 2 and "is not a saved factrecall model" in err and not out_path.exists()
    _, path, _, _ = saved
    for flags, message in [
        (["--method", "rome"], "method must be one of rank-one, batch, finetune"),
        (["--where", "heads"], "where must be one of mlp, values, both"),
        (["--replay"], "replay applies to method 'finetune' only"),
        (["--contexts", "0"], "n_contexts must be ≥ 1"),
    ]:
        code, _, err = run_cli(
            capsys, "edit", str(path), "--edits", str(edits), "--save", str(out_path), *flags
        )
        assert code == 2 and message in err and not out_path.exists(), err
