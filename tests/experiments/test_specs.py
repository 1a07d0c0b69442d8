"""The experiments' models: validation once at build time (pydantic, then the library), one ConfigError
naming the field, the value and what is allowed; trusted points rebuild the same library spec."""

import pytest

from factrecall.core.errors import ConfigError
from factrecall.experiments import specs


@pytest.mark.parametrize(
    ("model", "values", "message"),
    [
        (specs.TransformerTrainPoint, {"H": 0}, "H: Input should be greater than or equal to 1 (got 0)"),
        (specs.DynamicsPoint, {"attention": "relu"}, "attention: Input should be 'linear' or 'softmax'"),
        (specs.DynamicsPoint, {"colour": 1}, "colour: unknown key (got 1); allowed keys: S, R, D, n_noise"),
        # the library's own validation, its message as the library wrote it
        (specs.MemoryCapacityPoint, {"model": "linear", "d": 8, "rank": 9}, "rank must be in [1, d=8], got"),
        (specs.DynamicsPoint, {"n_steps": 100}, "n_steps=100 must be a multiple of eval_every=64"),
        (specs.ConstructionPoint, {"mlp_ratio": 1.0}, "mechanism 'attention' has no MLP"),
    ],
)
def test_build_raises_one_config_error_naming_the_field(model, values, message):
    with pytest.raises(ConfigError) as info:
        specs.build(model, values, where="point 3")
    assert str(info.value).startswith("point 3: ") and message in str(info.value)


def test_names_say_which_flag_set_a_field():
    with pytest.raises(ConfigError, match=r"^--heads: Input should be greater than or equal to 1 \(got 0\)$"):
        specs.build(specs.TransformerTrainPoint, {"H": 0}, names={"H": "--heads"})


def test_a_trusted_point_makes_the_same_spec_as_a_validated_one():
    point = specs.build(specs.TransformerCapacityPoint, {"d": 16, "patience": 0})
    trusted = specs.TransformerCapacityPoint.model_construct(**point.model_dump())
    assert trusted.spec == point.spec and point.spec.patience is None  # patience 0: never stop early
    with pytest.raises(ValueError, match="frozen"):
        point.d = 8


def test_the_registry_names_each_sweepable_experiment_and_what_it_measures():
    assert list(specs.EXPERIMENTS) == [
        "memory_capacity",
        "transformer_train",
        "transformer_capacity",
        "construction",
        "dynamics",
        "editing",
    ]
    assert all(issubclass(m, specs.Point) and m.DESCRIPTION for m in specs.EXPERIMENTS.values())


def test_a_point_model_must_define_its_spec_and_run():
    from factrecall.experiments.specs import Point

    class Incomplete(Point):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()
