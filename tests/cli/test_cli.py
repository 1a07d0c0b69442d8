import json
import os
import subprocess
import sys

import pytest

from factrecall import cli


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        cli.main(list(argv))
    out, err = capsys.readouterr()
    return exc.value.code, out, err


REQUIRED_KEYS = {
    "model",
    "d",
    "params",
    "criterion",
    "method",
    "capacity",
    "capacity_per_seed",
    "bits_per_param",
    "facts_per_param",
    "seconds",
}


def test_capacity_linear_json_is_one_object_with_the_documented_keys(capsys):
    code, out, err = run_cli(capsys, "capacity", "linear", "--d", "8", "--seeds", "2", "--json", "--quiet")
    assert code == 0, err
    record = json.loads(out)
    assert REQUIRED_KEYS <= set(record)
    assert record["model"] == "linear" and record["d"] == 8 and record["params"] == 64
    assert len(record["capacity_per_seed"]) == 2 and record["capacity"] >= 20
    assert record["run"]["versions"]["jax"] and record["run"]["device"].startswith("cpu")
    assert record["spec"]["lrs"] == [0.1, 1.0, 10.0]


def test_a_commands_compilation_cache_is_bounded_so_its_entries_are_locked(tmp_path):
    # the suite runs its commands on an unbounded cache (conftest.py); a user's command bounds it
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_MAX_SIZE"}
    env |= {"JAX_COMPILATION_CACHE_DIR": str(tmp_path), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    argv = ["capacity", "linear", "--d", "4", "--seeds", "1", "--json", "--quiet"]
    code = "from factrecall.cli import main; main()"
    done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    entries = {p.name.removesuffix("-cache") for p in tmp_path.glob("*-cache")}
    # JAX keeps an access time beside each entry only when the cache is bounded (it evicts the oldest)
    assert entries and entries == {p.name.removesuffix("-atime") for p in tmp_path.glob("*-atime")}


def test_capacity_mlp_construction_table(capsys):
    code, out, err = run_cli(
        capsys, "capacity", "mlp", "--d", "8", "--width", "32", "--method", "construction", "--seeds", "1"
    )
    assert code == 0, err
    assert "capacity" in out and "bits_per_param" in out


def test_hebbian_json(capsys):
    code, out, _ = run_cli(
        capsys, "capacity", "linear", "--d", "16", "--method", "hebbian", "--criterion", "1.0", "--json", "-q"
    )
    assert code == 0
    assert json.loads(out)["method"] == "hebbian"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["capacity", "linear", "--d", "0"], "--d: Input should be greater than or equal to 1 (got 0)"),
        (["capacity", "linear", "--d", "abc"], "--d"),
        (["capacity", "linear", "--seeds", "0"], "--seeds must be ≥ 1, got 0"),
        (
            ["capacity", "linear", "--criterion", "1.5"],
            "--criterion: Input should be less than or equal to 1",
        ),
        (["capacity", "linear", "--method", "magic"], "--method: Input should be 'trained', 'hebbian' or"),
        (["capacity", "linear", "--rank", "99", "--d", "8"], "rank must be in"),
        (
            ["capacity", "linear", "--method", "construction"],
            "method for linear must be one of trained, hebbian",
        ),
        (["capacity", "linear", "--lr", "-1"], "--lr: Input should be greater than 0 (got -1.0)"),
        (["capacity", "linear", "--geometry", "torus"], "geometry"),
        (["capacity", "linear", "--bogus"], "No such option"),
        (["capacity", "mlp", "--width", "0"], "--width: Input should be greater than or equal to 1 (got 0)"),
        (["capacity", "mlp", "--outputs", "1"], "--outputs: Input should be greater than or equal to 2"),
        (["capacity", "mlp", "--method", "hebbian"], "method for mlp"),
        (["capacity", "conv"], "No such command"),
        (["reproduce", "fig99"], "unknown figure 'fig99'"),
        (["reproduce", "fig1", "--scale", "huge"], "unknown scale 'huge'"),
    ],
)
def test_bad_input_gives_error_and_exit_2(capsys, argv, match, tmp_path):
    code, out, err = run_cli(
        capsys, *argv, *(["--out", str(tmp_path / "r")] if argv[0] == "reproduce" else [])
    )
    assert code == 2
    assert err.startswith("error: ") and match in err, err
    assert out == ""
    assert not (tmp_path / "r").exists()


def test_plot_only_without_results_is_an_input_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "reproduce", "fig1", "--plot-only", "--out", str(tmp_path))
    assert code == 2 and "no results for fig1" in err


def test_reproduce_list(capsys):
    code, out, _ = run_cli(capsys, "reproduce", "--list")
    assert code == 0 and "fig1" in out and "fig6" in out


# ------------------------------------------------------------------------------ construct transformer

CONSTRUCT_KEYS = {
    "fact_accuracy",
    "params",
    "attention_params",
    "mlp_params",
    "bits_per_param",
    "bits_lower_bound",
}


def test_construct_transformer_json_has_the_documented_keys(capsys):
    # S = R = D = 8 at d = 64 in the MLP mechanism's shape, as in tests/recall/test_constructed.py
    argv = ["construct", "transformer", "--mechanism", "mlp", "--subjects", "8", "--relations", "8"]
    argv += "--answers-per-relation 8 --d 64 --heads 2 --width 256 --json --quiet".split()
    code, out, err = run_cli(capsys, *argv)
    assert code == 0, err
    record = json.loads(out)
    assert CONSTRUCT_KEYS <= set(record)
    assert record["fact_accuracy"] == 1.0
    assert record["params"] == 4 * 2 * 8 * 64 + 2 * 256 * 64
    assert record["attention_params"] + record["mlp_params"] == record["params"]


def test_construct_transformer_find_min_reports_params_per_fact(capsys):
    argv = ["construct", "transformer", "--subjects", "4", "--relations", "4", "--answers-per-relation", "2"]
    code, out, err = run_cli(capsys, *argv, "--find-min", "--precision", "0.2", "--json", "--quiet")
    assert code == 0, err
    record = json.loads(out)
    assert record["fact_accuracy"] == 1.0 and record["facts_stored"] == 1.0
    assert record["params_per_fact"] == pytest.approx(record["params"] / 16)
    assert record["d_per_seed"] == [record["d"]]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--mechanism", "ffn"], "--mechanism: Input should be 'attention', 'mlp' or 'hybrid' (got \"ffn\")"),
        (["--mechanism", "mlp", "--width", "0"], "needs an MLP"),
        (["--find-min", "--d", "32"], "--find-min searches"),
    ],
)
def test_construct_transformer_bad_flags_exit_2_and_write_nothing(capsys, flags, message):
    code, out, err = run_cli(
        capsys, "construct", "transformer", "--subjects", "4", "--relations", "4", *flags
    )
    assert code == 2 and out == ""
    assert err.startswith("error: ") and message in err


# ------------------------------------------------------------------------------------------- dynamics


def test_dynamics_json_and_files(capsys, tmp_path):
    argv = ["dynamics", "-S", "4", "-R", "2", "-D", "2", "--steps", "320", "--lr", "0.5", "--batch", "256"]
    code, out, err = run_cli(capsys, *argv, "--out", str(tmp_path), "--json", "--quiet")
    assert code == 0, err
    record = json.loads(out)
    assert {"stages", "final_loss", "predicted", "measured"} <= set(record)
    assert set(record["predicted"]) == {"relation", "subject"} and record["spec"]["S"] == 4
    for name in ("dynamics.csv", "dynamics.json", "dynamics.png", "dynamics.pdf"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert len((tmp_path / "dynamics.csv").read_text().strip().splitlines()) == 320 // 64 + 2


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--attention", "relu"], "--attention: Input should be 'linear' or 'softmax' (got \"relu\")"),
        (["--steps", "100"], "multiple of eval_every"),
        (["--model", "rnn"], "--model: Input should be 'simplified' or 'transformer'"),
        (["--zipf-subjects", "-1"], "--zipf-subjects: Input should be greater than or equal to 0"),
    ],
)
def test_dynamics_bad_flags_exit_2_and_write_nothing(capsys, tmp_path, argv, match):
    code, _, err = run_cli(capsys, "dynamics", *argv, "--out", str(tmp_path / "x"), "-q")
    assert code == 2 and err.startswith("error: ") and match in err
    assert not (tmp_path / "x").exists()
