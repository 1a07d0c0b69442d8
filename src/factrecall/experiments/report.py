"""``report.md`` and ``report.html``: the paper's constants at a glance, then every figure in the results
store, drawn again, with our fitted constants next to the paper's (whatever each figure's ``compare``
returns) and the deviation, plus the points that failed and why. The paper's numbers come from
:data:`factrecall.core.paper.PAPER` and are quoted for comparison, never used as results.

The opening table has one line per constant of that table: ours from the comparison of the figure that
measures it (the rows quoting its source; a range when the figure measures it several times), or "not
measured" when that figure is not in the store. Figures are any objects shaped like
:class:`factrecall.experiments.figures.base.Figure` (this module sits below them).

Paper: SPEC §7 (the report compares every fitted constant with the paper's and says how far off it is).
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from factrecall.core.io import atomic_write, csv_text
from factrecall.core.paper import PAPER, Constant
from factrecall.experiments.config import SCALES
from factrecall.experiments.store import Store, point_key


def _as_row(stored: dict[str, Any], scale: str) -> dict[str, Any]:
    """A figure row (what ``Figure.run`` returned) from a store row, with its point and provenance."""
    run = {k: stored[k] for k in ("versions", "device", "host", "started_utc", "finished_utc", "seconds")}
    return {**stored["metrics"], "point": stored["point"], "scale": scale, "run": run}


def figure_rows(
    store: Store, figure: Any, scale: str, points: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The done rows of ``figure`` at ``scale`` in the store: those of ``points`` in their order (default:
    every stored point, the figure's current points first)."""
    by_key = {r["point_key"]: r for r in store.rows(sweep=figure.name, scale=scale, status="done")}
    order = [point_key(p) for p in (points if points is not None else figure.points(scale))]
    keys = [k for k in order if k in by_key]
    if points is None:
        keys += [k for k in by_key if k not in set(order)]
    return [_as_row(by_key[k], scale) for k in keys]


def draw_figure(figure: Any, rows: list[dict[str, Any]], out: Path) -> list[Path]:
    """Draw ``figure`` from ``rows`` into ``out`` (PNG + PDF), with its data (CSV, JSON) and its comparison
    with the paper (``<name>_vs_paper.csv``)."""
    paths = figure.draw(rows, out / figure.name)
    atomic_write(out / f"{figure.name}.csv", csv_text(rows))
    atomic_write(out / f"{figure.name}.json", json.dumps({"figure": figure.name, "rows": rows}, default=str))
    atomic_write(out / f"{figure.name}_vs_paper.csv", csv_text(figure.compare(rows)))
    return paths


class Section(NamedTuple):
    """What the report says about one figure (or one experiment sweep, with ``figure=None``)."""

    name: str
    title: str
    scale: str
    done: int
    failed: list[tuple[dict[str, Any], str]]
    expected: str
    comparison: list[dict[str, Any]]
    problem: str | None
    images: list[str]
    seconds: float


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return "n/a" if math.isnan(v) else f"{v:.3g}"
    return "—" if v is None else str(v)


def _deviation(v: Any) -> str:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return "n/a" if math.isnan(v) else f"{v:+.0%}"
    return _fmt(v)


def _figure_section(store: Store, figure: Any, scale: str, out: Path, draw: bool) -> Section:
    name = figure.name
    rows = figure_rows(store, figure, scale)
    failed = [(r["point"], r["reason"]) for r in store.rows(sweep=name, scale=scale, status="failed")]
    comparison, problem, images = [], None, []
    try:
        if draw and rows:
            draw_figure(figure, rows, out)
        comparison = figure.compare(rows) if rows else []
        images = [f"{name}.png"] if (out / f"{name}.png").exists() else []
    except Exception as exc:  # a figure with too few points to fit is reported, not fatal
        problem = f"{type(exc).__name__}: {exc}"
    seconds = sum(float(r["run"]["seconds"]) for r in rows)
    return Section(
        name, figure.title, scale, len(rows), failed, figure.expected, comparison, problem, images, seconds
    )


def sections(
    store: Store, figures: dict[str, Any], out: Path, *, prefer: str = "quick", draw: bool = True
) -> list[Section]:
    """One section per figure in the store (at ``prefer`` scale when it has both), then per other sweep."""
    present: dict[str, list[str]] = {}
    for sweep, scale, _, _ in store.sweeps():
        present.setdefault(sweep, []).append(scale)
    out_sections = []
    for name, figure in figures.items():
        scales = [s for s in SCALES if s in present.get(name, [])]
        if scales:
            scale = prefer if prefer in scales else scales[-1]
            out_sections.append(_figure_section(store, figure, scale, out, draw))
    for sweep, scale, done, _ in store.sweeps():
        if sweep not in figures:
            failed = [(r["point"], r["reason"]) for r in store.rows(sweep=sweep, status="failed")]
            title = f"Sweep {sweep}"
            out_sections.append(Section(sweep, title, scale, done, failed, "", [], None, [], 0.0))
    return out_sections


COMPARISON = ("quantity", "ours", "paper", "deviation", "paper's source")
CONSTANTS = ("constant", "paper", "ours", "deviation", "measured by", "paper's source")


def _comparison_cells(c: dict[str, Any]) -> tuple[str, ...]:
    return (
        str(c.get("quantity", "?")),
        _fmt(c.get("ours")),
        _fmt(c.get("paper")),
        _deviation(c.get("deviation")),
        str(c.get("paper_source", "")),
    )


def _span(values: Sequence[Any], fmt: Callable[[Any], str]) -> str:
    """One value, or the range of several (NaNs left out), each written with ``fmt``."""
    if len(values) == 1:
        return fmt(values[0])
    finite = [v for v in values if isinstance(v, int | float) and not math.isnan(v)]
    if not finite:
        return "n/a"
    return f"{fmt(min(finite))} to {fmt(max(finite))} ({len(values)} values)"


def _quotes(row: dict[str, Any], constant: Constant) -> bool:
    """Whether a comparison row compares with ``constant`` (its source and value: two constants may share
    a source)."""
    return row.get("paper_source") == constant.source and row.get("paper") == constant.value


def _constant_cells(constant: Constant, secs: list[Section]) -> tuple[str, ...]:
    """A line of the opening table: the constant, the paper's value, ours from the figure measuring it (for
    a guide line, ``figure`` None, from a figure whose comparison quotes it, if any)."""
    if constant.figure is not None:
        section = next((s for s in secs if s.name == constant.figure), None)
    else:
        section = next((s for s in secs if any(_quotes(c, constant) for c in s.comparison)), None)
    rows = [c for c in section.comparison if _quotes(c, constant)] if section else []
    if section is None or not rows:
        ours, dev = "not measured", "—"
    else:
        ours = _span([c.get("ours") for c in rows], _fmt)
        dev = _span([c.get("deviation") for c in rows], _deviation)
    by = f"{section.name} ({section.scale})" if section else constant.figure or "— (a guide line)"
    return (constant.meaning, f"{constant.value:.4g}", ours, dev, by, constant.source)


def constants_table(secs: list[Section]) -> list[tuple[str, ...]]:
    """The opening table, one line per constant of :data:`factrecall.core.paper.PAPER` (see
    :data:`CONSTANTS` for its columns)."""
    return [_constant_cells(c, secs) for c in PAPER.values()]


def _md_table(header: Sequence[str], lines: list[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(cells) + " |" for cells in lines] + [""]


def _html_table(header: Sequence[str], lines: list[tuple[str, ...]]) -> str:
    rows = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
    rows += ["<tr>" + "".join(f"<td>{html.escape(x)}</td>" for x in cells) + "</tr>" for cells in lines]
    return "\n".join([*rows, "</table>"])


def _markdown(secs: list[Section], store: Path, figures: dict[str, Any]) -> str:
    lines = [
        "# factrecall: reproduction report",
        "",
        f"From the results store `{store}`. *ours* is measured by these runs; *paper* is the paper's value,",
        "quoted for comparison (never used as a result). Deviation = (ours − paper) / paper.",
        "",
        "## The paper's constants at a glance",
        "",
    ]
    lines += _md_table(CONSTANTS, constants_table(secs))
    for s in secs:
        lines += [f"## {s.title}", "", f"Scale: `{s.scale}`; points done: {s.done}; failed: {len(s.failed)}."]
        if s.expected:
            lines += [f"Expected: {s.expected}."]
        lines += [""] + [f"![{s.name}]({img})" for img in s.images] + ([""] if s.images else [])
        if s.comparison:
            lines += _md_table(COMPARISON, [_comparison_cells(c) for c in s.comparison])
        if s.problem:
            lines += [f"No comparison: {s.problem}", ""]
        for point, reason in s.failed:
            lines.append(f"- failed `{point}`: {reason}")
        if s.name in figures:
            lines += [
                "",
                f"Data: [`{s.name}.csv`]({s.name}.csv); compute time of the points: {s.seconds:.0f} s.",
            ]
        lines.append("")
    return "\n".join(lines)


def _html(secs: list[Section], store: Path) -> str:
    e = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>factrecall report</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}td,th{border:1px solid #ccc;"
        "padding:2px 6px}table{border-collapse:collapse}img{max-width:100%}</style></head><body>",
        "<h1>factrecall: reproduction report</h1>",
        f"<p>From the results store <code>{e(str(store))}</code>. <i>ours</i> is measured by these runs; "
        "<i>paper</i> is the paper's value, quoted for comparison. Deviation = (ours − paper) / paper.</p>",
        "<h2>The paper's constants at a glance</h2>",
        _html_table(CONSTANTS, constants_table(secs)),
    ]
    for s in secs:
        parts.append(
            f"<h2>{e(s.title)}</h2><p>Scale: <code>{e(s.scale)}</code>; points done: {s.done}; "
            f"failed: {len(s.failed)}. {('Expected: ' + e(s.expected)) if s.expected else ''}</p>"
        )
        parts += [f"<img src='{e(img)}' alt='{e(s.name)}'>" for img in s.images]
        if s.comparison:
            parts.append(_html_table(COMPARISON, [_comparison_cells(c) for c in s.comparison]))
        if s.problem:
            parts.append(f"<p>No comparison: {e(s.problem)}</p>")
        if s.failed:
            parts.append(
                "<ul>"
                + "".join(f"<li>failed <code>{e(str(p))}</code>: {e(r)}</li>" for p, r in s.failed)
                + "</ul>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(
    store: Store, out: Path, figures: dict[str, Any], *, prefer: str = "quick", draw: bool = True
) -> tuple[Path, Path]:
    """Redraw every figure in ``store`` into ``out`` (unless ``draw`` is unset) and write ``report.md`` and
    ``report.html`` there; return both paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    secs = sections(store, figures, out, prefer=prefer, draw=draw)
    md, page = out / "report.md", out / "report.html"
    atomic_write(md, _markdown(secs, store.path, figures))
    atomic_write(page, _html(secs, store.path))
    return md, page
