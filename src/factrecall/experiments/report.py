"""``report.md`` and ``report.html``: every figure in the results store, drawn again, with our fitted
constants next to the paper's (whatever each figure's ``compare`` returns: the guide constants 1.3, 0.35,
1.2 and 0.15, the Figure 4-right frontier, the Figure 5 stage steps) and the deviation, plus the points
that failed and why. The paper's numbers are quoted for comparison and never used as results.

Figures are any objects shaped like :class:`factrecall.experiments.reproduce.Figure` (this module sits
below it).

Paper: SPEC §7 (the report compares every fitted constant with the paper's and says how far off it is).
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

from factrecall.experiments.store import Store, point_key

SCALES = ("quick", "paper")


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _csv_text(rows: list[dict[str, Any]]) -> str:
    skip = {"run", "spec"}
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in skip and k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()})
    return buf.getvalue()


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
    atomic_write(out / f"{figure.name}.csv", _csv_text(rows))
    atomic_write(out / f"{figure.name}.json", json.dumps({"figure": figure.name, "rows": rows}, default=str))
    atomic_write(out / f"{figure.name}_vs_paper.csv", _csv_text(figure.compare(rows)))
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


def _markdown(secs: list[Section], store: Path, figures: dict[str, Any]) -> str:
    lines = [
        "# factrecall: reproduction report",
        "",
        f"From the results store `{store}`. *ours* is measured by these runs; *paper* is the paper's value,",
        "quoted for comparison (never used as a result). Deviation = (ours − paper) / paper.",
        "",
    ]
    for s in secs:
        lines += [f"## {s.title}", "", f"Scale: `{s.scale}`; points done: {s.done}; failed: {len(s.failed)}."]
        if s.expected:
            lines += [f"Expected: {s.expected}."]
        lines += [""] + [f"![{s.name}]({img})" for img in s.images] + ([""] if s.images else [])
        if s.comparison:
            lines += ["| quantity | ours | paper | deviation | paper's source |", "|---|---|---|---|---|"]
            for c in s.comparison:
                lines.append(
                    f"| {c.get('quantity', '?')} | {_fmt(c.get('ours'))} | {_fmt(c.get('paper'))} | "
                    f"{_deviation(c.get('deviation'))} | {c.get('paper_source', '')} |"
                )
            lines.append("")
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
    ]
    for s in secs:
        parts.append(
            f"<h2>{e(s.title)}</h2><p>Scale: <code>{e(s.scale)}</code>; points done: {s.done}; "
            f"failed: {len(s.failed)}. {('Expected: ' + e(s.expected)) if s.expected else ''}</p>"
        )
        parts += [f"<img src='{e(img)}' alt='{e(s.name)}'>" for img in s.images]
        if s.comparison:
            parts.append(
                "<table><tr><th>quantity</th><th>ours</th><th>paper</th><th>deviation</th>"
                "<th>paper's source</th></tr>"
            )
            for c in s.comparison:
                cells = (
                    c.get("quantity", "?"),
                    _fmt(c.get("ours")),
                    _fmt(c.get("paper")),
                    _deviation(c.get("deviation")),
                    c.get("paper_source", ""),
                )
                parts.append("<tr>" + "".join(f"<td>{e(str(x))}</td>" for x in cells) + "</tr>")
            parts.append("</table>")
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
