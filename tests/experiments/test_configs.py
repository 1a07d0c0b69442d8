"""configs/ holds one TOML per paper figure and scale it offers, generated from reproduce.FIGURES."""

from pathlib import Path

from factrecall.experiments.config import load_sweep
from factrecall.experiments.reproduce import (
    CONFIGS_COMMAND,
    FIGURES,
    SCALES,
    config_name,
    config_text,
    figure_points,
)
from factrecall.experiments.store import point_key

CONFIGS = Path(__file__).parents[2] / "configs"
FIX = f"regenerate them with `{CONFIGS_COMMAND}` (from the repository root) and commit configs/"


def test_every_figure_has_an_up_to_date_config_per_scale():
    expected = {config_name(n, s): config_text(f, s) for n, f in FIGURES.items() for s in f.scales}
    missing = [n for n in expected if not (CONFIGS / n).exists()]
    stale = [n for n in expected if n not in missing and (CONFIGS / n).read_text() != expected[n]]
    extra = sorted(p.name for p in CONFIGS.glob("*.toml") if p.name not in expected)
    assert not (missing or stale or extra), (
        f"configs/ does not match reproduce.FIGURES: missing {missing}, stale {stale}, "
        f"no longer a figure {extra} (delete those); {FIX}"
    )


def test_configs_load_and_give_each_figures_points():
    for name, figure in FIGURES.items():
        for scale in figure.scales:
            cfg = load_sweep(CONFIGS / config_name(name, scale))
            assert (cfg.figure, cfg.scale, cfg.name) == (name, scale, name)
            points = figure_points(cfg)
            assert [point_key(p) for p in points] == [point_key(p) for p in figure.points(scale)], FIX
            header = (CONFIGS / config_name(name, scale)).read_text().splitlines()[:4]
            assert header[0] == f"# {figure.title}" and "Command: factrecall sweep" in header[1]


def test_medium_configs_are_figure_4s_only():
    medium = sorted(p.name for p in CONFIGS.glob("*_medium.toml"))
    assert medium == ["fig4-tradeoff_medium.toml", "fig4_medium.toml"]
    assert all(s in SCALES for f in FIGURES.values() for s in f.scales)
