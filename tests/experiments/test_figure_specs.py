"""The figures run the experiments' own models: a figure point builds the experiment's point model (so its
unset fields take the model's defaults, the same as the command's and the sweep's) and calls its ``run``."""

import pytest

from factrecall.experiments import reproduce, specs
from factrecall.recall.paper_procedure import point_fields

# figure → the experiment model its points run through
RUNS_THROUGH = {
    "fig1": specs.MemoryCapacityPoint,
    "fig6": specs.MemoryCapacityPoint,
    "fig4": specs.TransformerCapacityPoint,
    "constructions": (specs.ConstructionPoint, specs.TransformerCapacityPoint),
    "fig5": specs.DynamicsPoint,
    "plateau": specs.DynamicsPoint,
    "editing": specs.EditingPoint,
}
CANNED = {  # what a run returns, enough for the figures' row code
    specs.MemoryCapacityPoint: {"capacity": 1.0},
    specs.TransformerCapacityPoint: {"capacity": 1, "facts": 1},
    specs.ConstructionPoint: {"d": 8, "d_h": 8, "H": 1, "m": 0},
    specs.DynamicsPoint: {
        "measured": {"relation": None, "subject": None},
        "predicted": {"relation": 1.0, "subject": 2.0},
        "stages": [],
        "final_loss": 0.0,
        "seconds": 0.0,
        "spec": {"S": 16, "alpha_S": 0.0},
    },
    specs.EditingPoint: {"N_star": 144, "per_seed": []},
}


@pytest.fixture
def built(monkeypatch):
    """Every model the figures build, in order; their runs return canned records (nothing is trained)."""
    seen = []
    for model, record in CANNED.items():

        def run(self, update=None, record=record):
            seen.append(self)
            return dict(record)

        monkeypatch.setattr(model, "run", run)
    return seen


@pytest.mark.parametrize("name", sorted(RUNS_THROUGH))
def test_figure_points_build_the_experiment_model_with_its_defaults(built, name):
    figure = reproduce.FIGURES[name]
    for scale in figure.scales:
        for given in figure.points(scale):
            built.clear()
            figure.run(given, lambda *a: None)
            point = point_fields(given)  # procedure "paper" resolves criterion_on, patience and early_stops
            (model,) = built
            assert isinstance(model, RUNS_THROUGH[name]), (name, point)
            # (a share is a hybrid's: other mechanisms' points carry 0 or 1 for the figure's axes only)
            for field, info in type(model).model_fields.items():
                if field not in point:  # unset in the figure: the model's own default
                    default = info.get_default(call_default_factory=True)
                    assert getattr(model, field) == default or field == "m", (name, field)
                elif point[field] is not None and not (
                    field == "attention_share" and model.mechanism != "hybrid"
                ):
                    assert getattr(model, field) == point[field], (name, field)
