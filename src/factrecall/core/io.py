"""Writing results so that nothing half-written is ever left behind: atomic file writes and CSV text.

Every file factrecall writes (figures, their CSV/JSON data, reports, configs, curves) goes through
:func:`atomic_file`: the content is written to a temporary file in the same folder, then renamed over the
target in one step, so a reader (or a resumed run) sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary path to write; on success it replaces ``path`` atomically (on error it is removed).

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_file(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes the file private; results are meant to be shared
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def csv_text(rows: Sequence[Mapping[str, Any]], skip: Sequence[str] = ("run", "spec")) -> str:
    """Rows as CSV text: the union of their keys in order of first appearance (``skip`` left out); lists
    and tables are written as JSON.

    >>> csv_text([{"d": 8, "seeds": [0, 1]}, {"d": 16, "m": 4}]).splitlines()
    ['d,seeds,m', '8,"[0, 1]",', '16,,4']
    """
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in skip and k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in r.items()})
    return buf.getvalue()


def curves_csv(steps: Sequence[int], curves: Mapping[str, Sequence[float]]) -> str:
    """Training curves as CSV text: a ``step`` column, then one column per curve (6 significant digits).

    >>> print(curves_csv([0, 64], {"loss": [3.4657, 2.1]}), end="")
    step,loss
    0,3.4657
    64,2.1
    """
    lines = [",".join(("step", *curves))]
    for i, step in enumerate(steps):
        lines.append(",".join([str(int(step))] + [f"{float(v[i]):.6g}" for v in curves.values()]))
    return "\n".join(lines) + "\n"
