"""One definition per experiment: a command's option defaults, a sweep point's resolved defaults and the
model's field defaults are the same values, all read from the experiment's model in specs.py."""

import pytest
import typer

from factrecall import cli
from factrecall.experiments import specs, sweeps
from factrecall.experiments.config import SweepConfig

# options of an experiment command that are not fields of its model
CLI_ONLY = {"as_json", "quiet", "save", "out", "find_min"}
# flag → field, as the README documents the flags (a renamed parameter would silently lose its value)
FLAGS = {
    "--d": "d",
    "--rank": "rank",
    "--width": "m",
    "--outputs": "M",
    "--seeds": "seeds",
    "--criterion": "criterion",
    "--criterion-on": "criterion_on",
    "--top-k": "top_k",
    "--method": "method",
    "--lr": "lrs",
    "--steps": "n_steps",
    "--geometry": "geometry",
    "--zipf": "zipf",
    "--precision": "precision",
    "--heads": "H",
    "--head-dim": "d_h",
    "--subjects": "S",
    "--relations": "R",
    "--answers-per-relation": "D",
    "--seq-len": "T",
    "--batch": "batch",
    "--attention": "attention",
    "--train-embeddings": "train_embeddings",
    "--seed": "seed",
    "--scaling": "scaling",
    "--patience": "patience",
    "--early-stops": "early_stops",
    "--procedure": "procedure",
    "--mechanism": "mechanism",
    "--attention-share": "attention_share",
    "--memory": "memory",
    "--contexts": "n_contexts",
    "--embeddings": "embeddings",
    "--model": "model",
    "--zipf-subjects": "alpha_S",
    "--gradient-flow": "substeps",
}
DYNAMICS_FLAGS = {"--lr": "lr", "--batch": "B"}  # dynamics: plain gradient descent's lr and batch B

# (command path, experiment, the sweep point's required keys, the models the command builds)
EXPERIMENTS = [
    (("capacity", "linear"), "memory_capacity", {"model": "linear"}, ()),
    (("capacity", "mlp"), "memory_capacity", {"model": "mlp"}, ()),
    (("train", "transformer"), "transformer_train", {}, ()),
    (("capacity", "transformer"), "transformer_capacity", {}, ()),
    (("construct", "transformer"), "construction", {}, (specs.ConstructedPoint,)),  # and without --find-min
    (("dynamics",), "dynamics", {}, ()),
]


def _options(path):
    command = typer.main.get_command(cli.app)
    for name in path:
        command = command.commands[name]
    return [p for p in command.params if p.name not in CLI_ONLY]


def _value(param, fields):
    """(field, the value a command gives its model when the flag is absent)."""
    if param.name == "seeds":  # --seeds K: seeds 0, …, K-1
        return "seeds", list(range(param.default))
    if param.name == "seed" and "seeds" in fields:  # construct --find-min: seeds [seed]
        return "seeds", [param.default]
    return param.name, param.default


@pytest.mark.parametrize(("path", "experiment", "required", "others"), EXPERIMENTS)
def test_command_sweep_and_model_defaults_are_the_models(path, experiment, required, others):
    model = specs.EXPERIMENTS[experiment]
    (swept,) = sweeps.checked_points(SweepConfig(experiment=experiment, points=[required]))
    assert swept == specs.build(model, required).model_dump()
    for name, field in model.model_fields.items():  # the sweep point is the model's field defaults
        if name not in required and not (experiment == "memory_capacity" and name == "m"):
            assert swept[name] == field.get_default(call_default_factory=True), name
    built = [specs.build(m, required).model_dump() for m in (model, *others)]
    flags = {**FLAGS, **(DYNAMICS_FLAGS if experiment == "dynamics" else {})}
    for param in _options(path):
        flag = next(o for o in param.opts if o.startswith("--"))
        assert flags[flag] == param.name, f"{flag} sets {param.name!r}, documented as {flags[flag]!r}"
        for fields in built:
            field, value = _value(param, fields)
            if field in fields:
                assert value == fields[field], f"{' '.join(path)} {flag}: {value!r} != {fields[field]!r}"
                break
        else:
            raise AssertionError(f"{' '.join(path)} {flag}: {param.name!r} is no field of its model")
    if experiment == "memory_capacity" and required["model"] == "mlp":
        assert swept["m"] == specs.MemoryCapacityPoint.MLP_WIDTH  # an MLP's width when unset: the command's


def test_a_command_builds_the_same_model_a_sweep_point_does():
    """The width of an MLP memory is the one default that depends on another field (``model``)."""
    assert specs.MemoryCapacityPoint(model="mlp").m == 16
    assert specs.MemoryCapacityPoint(model="linear").m is None
