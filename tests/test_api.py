"""The Python API computes what the commands compute: the same record as ``--json`` for the same arguments,
the same validation errors, and the store as a DataFrame."""

import json

import pytest

import factrecall
from factrecall import cli

VOLATILE = {"run", "seconds", "saved", "model"}


def cli_json(capsys, *argv):
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    return {k: v for k, v in json.loads(out).items() if k not in VOLATILE}


def numbers(result):
    return {k: v for k, v in result.to_dict().items() if k not in VOLATILE}


def test_memory_capacity_is_the_capacity_command(capsys):
    r = factrecall.memory_capacity("linear", d=8, method="hebbian", criterion=1.0, seeds=[0, 1])
    assert numbers(r) == cli_json(
        capsys, "capacity", "linear", "--d", "8", "--method", "hebbian", "--criterion", "1.0", "--seeds", "2"
    )
    assert r.point.d == 8 and r["capacity_per_seed"] == r.to_dict()["capacity_per_seed"]
    assert "capacity=" in repr(r)


def test_train_evaluate_query_attribute_are_the_commands(capsys, tmp_path, tiny):
    fields, flags, _ = tiny  # the suite's tiny transformer (tests/conftest.py)
    path = tmp_path / "m.npz"
    trained = factrecall.train_transformer(**fields)
    assert numbers(trained) == cli_json(capsys, "train", "transformer", *flags, "--save", str(path))
    assert trained.save(tmp_path / "api.npz").is_file()
    for model in (path, tmp_path / "api.npz", trained.model):  # a file from either side, or the model itself
        assert numbers(factrecall.evaluate(model, n_contexts=4)) == cli_json(
            capsys, "eval", str(path), "--contexts", "4"
        )
    assert numbers(factrecall.query(path, "s1", "r2")) == cli_json(
        capsys, "query", str(path), "--subject", "s1", "--relation", "r2"
    )
    assert numbers(factrecall.attribute(trained.model)) == cli_json(capsys, "attribute", str(path))


def test_bad_arguments_are_config_errors_naming_the_field():
    with pytest.raises(factrecall.ConfigError, match=r"d: .*greater than or equal to 1 \(got 0\)"):
        factrecall.memory_capacity("linear", d=0)
    with pytest.raises(factrecall.ConfigError, match="model"):
        factrecall.memory_capacity("conv")
    with pytest.raises(factrecall.ConfigError, match=r"unknown key|Extra inputs"):
        factrecall.train_transformer(heads=4)
    with pytest.raises(factrecall.ConfigError, match="does not exist"):
        factrecall.results("no/such.db")
    with pytest.raises(factrecall.ConfigError, match="no trained model"):
        factrecall.memory_capacity("linear", d=4, method="hebbian", seeds=[0]).save("x.npz")


def test_importing_factrecall_does_not_start_jax():
    import subprocess
    import sys

    code = "import factrecall, sys; factrecall.Result; assert 'jax' not in sys.modules, 'jax imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_notebook_keeps_its_compiled_programs_where_the_commands_do(tmp_path):
    """``factrecall.use_compilation_cache()``: off, it says so (``None``) and tells JAX; on again, it is the
    command line's folder (``$XDG_CACHE_HOME/factrecall/jax``), exported for sweep workers, and JAX writes
    there."""
    import os
    import subprocess
    import sys

    code = """if True:
        import os, sys, factrecall
        factrecall.use_cpu_cores()
        assert factrecall.use_compilation_cache(enabled=False) is None
        assert os.environ["JAX_ENABLE_COMPILATION_CACHE"] == "false"
        path = factrecall.use_compilation_cache()  # and on again
        assert os.environ["JAX_COMPILATION_CACHE_DIR"] == path and path == sys.argv[1], path
        import jax
        assert jax.config.jax_enable_compilation_cache and jax.config.jax_compilation_cache_dir == path
        jax.jit(lambda x: x * 2 + 1)(jax.numpy.ones(3))
    """
    drop = ("JAX_COMPILATION_CACHE_DIR", "JAX_ENABLE_COMPILATION_CACHE", "FACTRECALL_NO_CACHE")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {"XDG_CACHE_HOME": str(tmp_path), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    folder = tmp_path / "factrecall" / "jax"
    subprocess.run([sys.executable, "-c", code, str(folder)], env=env, check=True)
    assert any(folder.glob("*-cache")), "no compiled program in the cache"
