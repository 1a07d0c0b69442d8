"""The transformer commands: train (with --save), eval, capacity; JSON keys and input errors."""

import json

import pytest

from factrecall import cli

TRAIN_KEYS = {
    "params",
    "attention_params",
    "mlp_params",
    "facts",
    "fact_accuracy",
    "sampled_accuracy",
    "steps",
    "seconds",
    "bits_per_param",
}


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_train_save_and_eval(capsys, tmp_path, tiny, tiny_model):
    fields, tiny_flags, params = tiny  # the suite's tiny transformer (tests/conftest.py)
    path = tmp_path / "model.npz"
    argv = ("train", "transformer", *tiny_flags, "--save", str(path), "--json", "--quiet")
    code, out, err = run_cli(capsys, *argv)
    assert code == 0 and err == "", err  # --quiet: no progress bar on stderr
    record = json.loads(out)
    assert TRAIN_KEYS <= set(record)
    assert record["facts"] == 16 and record["params"] == params == 4 * 2 * 4 * 16 + 2 * 16 * 16
    assert record["fact_accuracy"] >= 0.99 and record["steps"] <= 1024 and path.is_file()
    assert record["lr"] in fields["lrs"]
    # the command trains the library's model (the fixture: recall.training.train with the same recipe)
    assert (record["steps"], record["lr"]) == (tiny_model.info["steps"], tiny_model.info["lr"])
    code, out, err = run_cli(capsys, "eval", str(path), "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["fact_accuracy"] >= 0.98 and again["params"] == record["params"]
    assert again["steps"] == record["steps"]  # training info travels with the weights


@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["train", "transformer", "--heads", "0"],
            "--heads: Input should be greater than or equal to 1 (got 0)",
        ),
        (
            ["train", "transformer", "--subjects", "0"],
            "--subjects: Input should be greater than or equal to 1",
        ),
        (
            ["train", "transformer", "--attention", "cubic"],
            "--attention: Input should be 'softmax' or 'linear'",
        ),
        (["train", "transformer", "--batch", "0"], "--batch: Input should be greater than or equal to 1"),
        (["train", "transformer", "--lr", "-1"], "--lr: Input should be greater than 0"),
        (["train", "transformer", "--save", "/no/such/dir/m.npz"], "does not exist"),
        (["eval", "/no/such/model.npz"], "does not exist"),
    ],
)
def test_bad_input_exits_2(capsys, argv, match):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and match in err
