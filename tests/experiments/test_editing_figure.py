"""The ``editing`` figure: its points, drawing (PNG, PDF, CSV, curves CSV) and report from a store of canned
records, resuming after an interruption without redoing a finished point, and the report's statement of
whether edit capacity tracks spare capacity."""

import csv

import pytest

from factrecall.experiments import reproduce, specs
from factrecall.experiments.figures import editing
from factrecall.experiments.store import Store

N_STAR = 144


def _canned(point, capacity_of_spare):
    """A record shaped like :func:`factrecall.editing.study.run_point`'s: the edit capacity of every seed is
    ``capacity_of_spare(N* − N)``; the curve breaks at twice that (censored when it reaches k ≥ N/2)."""
    from factrecall.editing import study

    S, R = study.fill_sizes(144, point["fill"])
    N = S * R
    per_seed = []
    for seed in point["seeds"]:
        top = capacity_of_spare(N_STAR - N) + seed
        curve = [{"k": k, "efficacy": 1.0, "specificity": 1.0 if k <= top else 0.9} for k in study.edit_ks(N)]
        curve = curve[: next((i + 1 for i, c in enumerate(curve) if c["specificity"] < 0.99), len(curve))]
        capacity, censored = study.edit_capacity(curve)
        per_seed.append({"seed": seed, "curve": curve, "edit_capacity": capacity, "censored": censored})
    capacities = sorted(s["edit_capacity"] for s in per_seed)
    return {
        "S": S,
        "R": R,
        "N": N,
        "N_star": N_STAR,
        "spare": N_STAR - N,
        "edit_capacity": [s["edit_capacity"] for s in per_seed],
        "censored": [s["censored"] for s in per_seed],
        "edit_capacity_median": capacities[len(capacities) // 2],
        "per_seed": per_seed,
    }


@pytest.fixture
def canned(monkeypatch):
    """EditingPoint.run returns a canned record (nothing trained); the calls are recorded."""
    calls = []

    def run(self, update=None):
        calls.append(self.fill)
        return _canned(self.model_dump(), lambda spare: 1 + spare // 3)

    monkeypatch.setattr(specs.EditingPoint, "run", run)
    return calls


def test_points_cover_fills_methods_and_modes_with_three_seeds():
    quick = editing.editing_points("quick")
    assert len(quick) == 4 * 3 * 2 and {p["fill"] for p in quick} == {0.25, 0.5, 0.75, 1.0}
    assert {(p["method"], p["mode"]) for p in quick} == {
        (m, mode) for m in ("rank-one", "batch", "finetune") for mode in ("all-at-once", "sequential")
    }
    assert all(len(p["seeds"]) >= 3 for p in [*quick, *editing.editing_points("paper")])
    assert "editing" in reproduce.BEYOND_PAPER  # run by name, not by `reproduce all`


def test_figure_draws_data_and_report_and_resumes(tmp_path, canned, monkeypatch):
    def interrupted(point, update):
        if len(canned) == 5:
            raise KeyboardInterrupt  # Ctrl-C during the sixth point
        return editing.run_editing(point, update)

    monkeypatch.setitem(reproduce.FIGURES, "editing", editing.EDITING._replace(run=interrupted))
    with pytest.raises(KeyboardInterrupt):
        reproduce.run("editing", out=tmp_path, quiet=True)
    assert len(canned) == 5
    monkeypatch.setitem(reproduce.FIGURES, "editing", editing.EDITING)
    report = reproduce.run("editing", out=tmp_path, quiet=True).read_text()
    assert len(canned) == 24  # the five finished points were not run again
    with Store(tmp_path / "results.db") as store:
        assert len(store.rows(sweep="editing", status="done")) == 24
    for name in ("editing.png", "editing.pdf", "editing.csv", "editing.json", "editing_curves.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    with open(tmp_path / "editing_curves.csv") as f:
        curves = list(csv.DictReader(f))
    assert {c["method"] for c in curves} == {"rank-one", "batch", "finetune"} and {
        c["seed"] for c in curves
    } == {
        "0",
        "1",
        "2",
    }
    assert "## Editing (beyond the paper)" in report and "![editing](editing.png)" in report
    assert "edit capacity tracks it: more spare capacity, more edits absorbed" in report
    assert "f = 0.25 (N = 36, N* − N = 108) | ≥ 32 |" in report  # censored: every k < N absorbed


def test_comparison_says_when_edit_capacity_does_not_track_spare_capacity():
    rows = []
    for point in editing.editing_points("quick"):
        rows.append({**point, **_canned(point, lambda spare: 8 if spare in (0, 108) else 2)})  # a U
    fits = [c for c in editing.compare_editing(rows) if c["quantity"].startswith("slope")]
    assert len(fits) == 6 and all("does not track it (band includes 0)" in c["quantity"] for c in fits)
    assert all(c["paper"] is None and abs(c["ours"]) < 0.05 for c in fits)
