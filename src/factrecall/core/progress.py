"""Progress bars on stderr (rich), with a quiet mode for scripts.

Library code never prints: long functions take an ``on_round``/``on_point`` callback, and the CLI passes
the ``update`` of :func:`bar` to it.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Update = Callable[[int, int, str], None]
"""``update(done, total, status)``: ``total`` may be an estimate that changes as work proceeds."""

stderr = Console(stderr=True)


@contextlib.contextmanager
def bar(description: str, total: int | None = None, *, quiet: bool = False) -> Iterator[Update]:
    """A progress bar on stderr showing what is being done, done/total, elapsed time and time left.

    Yields an ``update(done, total, status)`` callable. With ``quiet`` (or when stderr is not a terminal
    and ``quiet`` is unset, rich prints only a final line) nothing is drawn.
    """
    if quiet:
        yield lambda done, total, status: None
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[status]}", style="dim"),
    )
    with Progress(*columns, console=stderr, transient=not sys.stderr.isatty()) as progress:
        task = progress.add_task(description, total=total, status="")

        def update(done: int, total: int, status: str) -> None:
            progress.update(task, completed=done, total=total, status=status[:80])

        yield update
