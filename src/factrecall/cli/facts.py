"""``factrecall plan``, ``query`` and ``attribute``: your own facts (a table of subject, relation, answer).

``plan`` predicts (and with ``--train`` trains) the smallest one-layer transformer that stores a fact table
(a trained model is kept only if it holds the criterion in fresh contexts too, and ``--save`` writes it
atomically, only then);
``query`` answers (subject, relation) pairs with a saved model; ``attribute`` says where a saved model keeps
its facts (attention, MLP, each head).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from factrecall.cli.common import JsonFlag, QuietFlag, emit_json, stdout
from factrecall.core.errors import check


def _plan_text(record: dict[str, Any]) -> None:
    t, p = record["table"], record["predicted"]
    stdout.print(
        f"[bold]{t['source']}[/bold]: {t['S']} subjects × {t['R']} relations = {t['facts']} facts, "
        f"{t['bits']:.0f} bits (answers per relation: {t['answers_per_relation']})"
    )
    if t["shared_answers"]:
        stdout.print(f"note: answers shared across relations (one token per relation): {t['shared_answers']}")
    s = p["shape"]
    stdout.print(
        f"predicted: d={s['d']}, H={s['H']}, d_h={s['d_h']}, m={s['m']} ({p['family']}): "
        f"{p['params']} params = {p['attention_params']} attention + {p['mlp_params']} MLP; "
        f"band {p['band_params'][0]}–{p['band_params'][1]} params (d {p['band_d'][0]}–{p['band_d'][1]})"
        + (" (extrapolated beyond the measured sizes)" if p["extrapolated"] else "")
    )
    for a in record.get("attempts", []):
        sh, fresh = a["shape"], a["verified"]
        stdout.print(
            f"tried d={sh['d']}, H={sh['H']}, d_h={sh['d_h']}, m={sh['m']}: accuracy {a['accuracy']:.4f} in "
            "training"
            + ("" if fresh is None else f", {fresh:.4f} in fresh contexts ({a['n_missed']} facts missed)")
        )
    if "verified" in record:
        v = record["verified"]
        vs = v["shape"]
        stdout.print(
            f"trained: d={vs['d']}, H={vs['H']}, d_h={vs['d_h']}, m={vs['m']}: {v['params']} params, "
            f"fact accuracy {v['fact_accuracy']:.4f}, facts stored {v['facts_stored']:.4f}, "
            f"{v['bits_stored']:.0f} of {v['table_bits']:.0f} bits ({v['bits_per_param']:.3f} bits/param)"
        )
        for rel, acc in v["per_relation"].items():
            stdout.print(f"  {rel}: {acc:.4f}")
        if v["missed"]:
            stdout.print(f"  not stored: {', '.join(v['missed'])}")
    if "smallest" in record:
        sm = record["smallest"]
        ratio = sm["predicted_over_smallest"]
        stdout.print(
            f"smallest stored (search): d={sm['d']}, {sm['params']} params; predicted / smallest = "
            + (f"{ratio:.2f}" if ratio is not None else "n/a")
        )
    if "saved" in record:
        stdout.print(f"saved: {record['saved']}")


FactsArg = Annotated[Path, typer.Argument(help="Fact table: .csv or .jsonl of subject, relation, answer.")]
ModelArg = Annotated[Path, typer.Argument(help="A model saved by 'plan --train --save' (.npz).")]
ContextsOpt = Annotated[int, typer.Option("--contexts", help="Random contexts per fact.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random contexts.")]


def plan_cmd(
    facts_file: FactsArg,
    criterion: Annotated[
        float,
        typer.Option(
            "--criterion",
            help="Fraction of (fact, context) pairs to answer correctly, in training and in fresh contexts.",
        ),
    ] = 1.0,
    budget_params: Annotated[
        int | None, typer.Option("--budget-params", help="Largest model (paper's parameter count) allowed.")
    ] = None,
    train: Annotated[
        bool,
        typer.Option("--train", help="Train the predicted model; grow it while it misses the criterion."),
    ] = False,
    search_smallest: Annotated[
        bool, typer.Option("--search-smallest", help="Also search the smallest shape that stores the table.")
    ] = False,
    max_tries: Annotated[int, typer.Option("--max-tries", help="Trainings allowed while growing.")] = 4,
    save: Annotated[
        Path | None, typer.Option("--save", help="Write the trained model (.npz); needs --train.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the training runs.")] = 0,
    as_json: JsonFlag = False,
    quiet: QuietFlag = False,
) -> None:
    """Predict the smallest one-layer transformer that stores a fact table (and train it with --train)."""
    from factrecall import api
    from factrecall.recall import models

    check(save is None or train, "--save needs --train (there is no model to save otherwise)")
    if save is not None:
        check(save.parent.is_dir(), f"--save: folder {str(save.parent)!r} does not exist")
    result = api.plan(
        facts_file,
        criterion=criterion,
        budget_params=budget_params,
        train=train,
        search_smallest=search_smallest,
        max_tries=max_tries,
        seed=seed,
        progress=not quiet and (train or search_smallest),
    )
    record = result.to_dict()
    if save is not None and result.model is not None:
        models.save(save, result.model)  # atomic
        record["saved"] = str(save)
    if as_json:
        emit_json(record)
    else:
        _plan_text(record)


def query_cmd(
    model_file: ModelArg,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject name, e.g. France.")] = None,
    relation: Annotated[
        str | None, typer.Option("--relation", help="Relation name, e.g. capital_of.")
    ] = None,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="Queries from a .csv/.jsonl file of subject, relation.")
    ] = None,
    contexts: ContextsOpt = 8,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
) -> None:
    """Answer (subject, relation) queries with a saved model: the answer and its probability."""
    import jax

    from factrecall.facts.queries import answer_queries, table_of
    from factrecall.facts.table import read_rows
    from factrecall.recall import models

    single = subject is not None or relation is not None
    check(
        single != (batch is not None),
        "give either --subject and --relation, or --batch FILE (not both, not neither)",
    )
    check(not single or (subject and relation), "--subject and --relation go together")
    check(contexts >= 1, f"--contexts must be ≥ 1, got {contexts}")
    pairs = (
        [(subject, relation)]
        if single
        else [(r.subject, r.relation) for r in read_rows(batch, ("subject", "relation"))]
    )
    check(bool(pairs), f"{batch}: no queries")
    model = models.load(model_file)
    answers = answer_queries(model, table_of(model), pairs, contexts, key=jax.random.key(seed))
    if as_json:
        emit_json(answers[0] if single else {"queries": answers})
        return
    for a in answers:
        mark = "" if a["correct"] else f"  (stored: {a['stored_answer']})"
        stdout.print(f"{a['fact']} = [bold]{a['answer']}[/bold]  p={a['probability']:.3f}{mark}")


def attribute_cmd(
    model_file: ModelArg,
    contexts: ContextsOpt = 8,
    seed: SeedOpt = 0,
    as_json: JsonFlag = False,
) -> None:
    """Where the facts live: facts surviving MLP ablation, attention direct-path ablation, and each head."""
    import jax

    from factrecall.facts.queries import table_of
    from factrecall.recall import models
    from factrecall.recall.attribution import attribute

    check(contexts >= 1, f"--contexts must be ≥ 1, got {contexts}")
    model = models.load(model_file)
    table = table_of(model)
    a = attribute(model.params, model.cfg, model.task, model.facts, contexts, key=jax.random.key(seed))
    record = a.summary()
    record["facts_by_path"] = a.facts_by_path(table.fact_name)
    record["model"] = str(model_file)
    if as_json:
        emit_json(record)
        return
    split = record["stored_split"]
    stdout.print(
        f"[bold]{model_file}[/bold]: {record['stored']} of {record['facts']} facts stored; "
        f"surviving MLP ablation {record['surviving_mlp_ablation']:.3f}, attention direct-path ablation "
        f"{record['surviving_attention_direct_ablation']:.3f}"
    )
    stdout.print(
        f"stored facts by path: attention {split['attention']}, MLP {split['mlp']}, both {split['both']}, "
        f"joint (needs both) {split['joint']}"
    )
    heads = ", ".join(f"h{h}: {x:.3f}" for h, x in enumerate(record["surviving_head_ablation"]))
    stdout.print(f"surviving each head's ablation: {heads}")
