"""The ``factrecall`` command line: the app assembled from its command modules, and :func:`main`.

Each command module parses its flags into an experiment's model (:mod:`factrecall.experiments.specs`) or
a library call, runs it and prints the result: ``capacity`` (linear, mlp, transformer), ``transformer``
(train transformer, eval), ``construct``, ``dynamics``, ``facts`` (plan, query, attribute), ``edit`` and
``store`` (sweep, report, export, reproduce); ``common`` holds what they share. Errors caused by input print
``error: <message>`` on stderr and exit with status 2; a run that fails at run time (e.g. every learning
rate diverged) exits with status 1.
"""

from __future__ import annotations

import factrecall

factrecall.use_cpu_cores()  # before JAX is imported: one CPU device per core

import sys  # noqa: E402

import typer  # noqa: E402

from factrecall.cli import capacity, construct, dynamics, edit, facts, store, transformer  # noqa: E402
from factrecall.cli.common import click_exceptions  # noqa: E402
from factrecall.core.cache import use_compilation_cache  # noqa: E402
from factrecall.core.errors import ConfigError, FactrecallError  # noqa: E402

app = typer.Typer(
    name="factrecall",
    help="Measure how neural networks store facts (Nichani, Lee & Bietti, ICLR 2025).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _global_options(
    no_cache: bool = typer.Option(
        False,
        "--no-cache",
        help="Do not use the persistent compilation cache (default: on, in ~/.cache/factrecall/jax or "
        "$JAX_COMPILATION_CACHE_DIR; FACTRECALL_NO_CACHE=1 also turns it off). A cached program is the "
        "compiled one: no number changes, a repeated command skips compiling.",
    ),
) -> None:
    """Measure how neural networks store facts (Nichani, Lee & Bietti, ICLR 2025)."""
    # exported to the environment too: the worker processes a sweep spawns (or Ray starts) share the cache
    use_compilation_cache(not no_cache)


app.add_typer(capacity.app, name="capacity")
app.command("sweep")(store.sweep_cmd)
app.command("report")(store.report_cmd)
app.command("export")(store.export_cmd)
app.command("reproduce")(store.reproduce_cmd)
app.add_typer(transformer.train_app, name="train")
app.command("eval")(transformer.eval_cmd)
app.add_typer(construct.app, name="construct")
app.command("dynamics")(dynamics.dynamics_cmd)
app.command("plan")(facts.plan_cmd)
app.command("query")(facts.query_cmd)
app.command("attribute")(facts.attribute_cmd)
app.command("edit")(edit.edit_cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app and turn input errors into ``error: ...`` with exit status 2."""
    help_shown = getattr(click_exceptions, "NoArgsIsHelpError", ())
    try:
        code = app(args=argv, prog_name="factrecall", standalone_mode=False)
    except help_shown:  # a group called without a command: its help was printed
        sys.exit(0)
    except click_exceptions.UsageError as exc:  # bad flag, bad value, missing argument
        print(f"error: {exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except FactrecallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


__all__ = ["ConfigError", "app", "main"]
