"""`vitrine learn`: adapt the model to operators' confirmed pairs; promote only a measured improvement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from catalog.workspace import Workspace
from vision.model_store import chosen_model

err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


class _Bars:
    """One rich progress bar per phase (importing, embedding, training, re-projecting, publishing)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, object] = {}

    def __call__(self, phase: str, done: int, total: int) -> None:
        task = self.tasks.get(phase)
        if task is None:
            task = self.tasks[phase] = self.progress.add_task(phase, total=max(total, 1))
        self.progress.update(task, completed=done, total=max(total, 1))  # type: ignore[arg-type]


def _progress() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description:<40}[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


def learn_command(
    pairs: Annotated[
        Path | None,
        typer.Option(
            "--pairs",
            help="A CSV of pairs (photo,vendor,sku) to import first; learning then uses every confirmed pair, "
            "these included. Without it: the pairs recorded from operators' offers (and earlier imports).",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="The model to adapt (default: $VITRINE_MODEL, else the default model)."),
    ] = None,
    holdout: Annotated[
        float, typer.Option(help="Share of the pairs' photos held out to decide whether the new version is better.")
    ] = 0.2,
    epochs: Annotated[
        int | None, typer.Option(help="Passes over the training pairs (default: enough for about 300 steps).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the held-out split and of training.")] = 0,
    views: Annotated[
        bool, typer.Option("--views/--no-views", help="With --pairs: also make the imported pairs customer views.")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Make the model mean its previous version again (nothing is learned).")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before rolling back.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the outcome (figures before and after) as JSON.")
    ] = False,
) -> None:
    """Adapt the model to operators' confirmed pairs (customer photo -> product).

    Fits a linear adapter on the model's embeddings; part of the pairs' photos are held out.

    The new version (<model>+pairs-<n>) is promoted only if it puts the right product first for more held-out photos.

    Promotion re-projects the catalog into the new version's index, then switches the model's active version.

    Serve, search, ingest and eval follow the switch; --rollback switches back, keeping what was ingested since.
    """
    from learning.versions import LearningError
    from vision.errors import ModelUnavailable

    name = chosen_model(model)
    workspace = Workspace.from_env()
    try:
        if rollback:
            outcome = _rollback(workspace, name, yes, as_json)
        else:
            outcome = _learn(workspace, name, pairs, views, holdout, epochs, seed)
    except (LearningError, ModelUnavailable) as exc:  # a database to upgrade: cli.main says so
        _fail(str(exc))
    if as_json:
        print(json.dumps(outcome))
        return
    if rollback:
        err.print(f"{outcome['model']} is {outcome['to']} again (was {outcome['from']}), model {outcome['model_id']}")
        return
    before, after = outcome["holdout"]["before"], outcome["holdout"]["after"]
    err.print(
        f"{outcome['pairs']['train']:,} pairs learned from, {outcome['pairs']['holdout']:,} held out "
        f"({outcome['pairs']['holdout_photos']:,} photos); training {outcome['training']['duration_s']:.1f} s"
    )
    for key, label in (("recall_at_1", "recall@1"), ("recall_at_5", "recall@5"), ("mrr", "MRR")):
        err.print(f"  held-out {label:<9} {before[key]:.3f} -> {after[key]:.3f}")
    style = "bold green" if outcome["promoted"] else "bold yellow"
    err.print(f"[{style}]{'promoted' if outcome['promoted'] else 'not promoted'}:[/] {outcome['reason']}")


def _learn(
    workspace: Workspace, model: str, pairs: Path | None, views: bool, holdout: float, epochs: int | None, seed: int
) -> dict:
    from catalog.db import make_engine, session_factory
    from learning.learn import LearnOptions, learn
    from learning.versions import LearningError

    if epochs is not None and epochs < 1:
        raise LearningError("--epochs must be at least 1")
    engine = make_engine(workspace.database_url)
    sessions = session_factory(engine)
    try:
        with _progress() as progress:
            bars = _Bars(progress)
            imported = _import(workspace, sessions, model, pairs, views, bars) if pairs is not None else None
            outcome = learn(workspace, sessions, model, options=LearnOptions(holdout, epochs, seed), progress=bars)
    finally:
        engine.dispose()
    if imported is not None:
        outcome["imported"] = imported
    return outcome


def _import(workspace: Workspace, sessions, model: str, pairs: Path, views: bool, bars: _Bars) -> dict:  # type: ignore[no-untyped-def]
    from index.errors import IndexMismatch, IndexNotFound
    from learning.versions import LearningError
    from vision.embedder import open_embedder
    from workflow.customer_views import offline_target
    from workflow.pairs_io import PairsFileError, count_rows, import_pairs
    from workflow.settings import Settings

    try:
        total = count_rows(pairs)
    except (OSError, UnicodeDecodeError) as exc:
        raise LearningError(f"cannot read {pairs}: {exc}") from None
    target = None
    if views:
        try:
            target = offline_target(workspace, open_embedder(model, "onnx"))
        except (IndexMismatch, IndexNotFound) as exc:
            raise LearningError(f"{exc} (or learn without --views)") from None
    try:
        summary = import_pairs(
            pairs,
            sessions,
            workspace,
            Settings.max_upload_bytes,
            Settings.max_upload_pixels,
            views=target,
            progress=lambda done: bars("importing pairs", done, total),
        )
    except PairsFileError as exc:
        raise LearningError(str(exc)) from None
    data = summary.to_json()
    return {key: data[key] for key in ("path", "rows", "imported", "already_present", "rejected", "views")}


def _rollback(workspace: Workspace, model: str, yes: bool, as_json: bool) -> dict:
    from learning.versions import LearningError, base_name, read_pointer, rollback
    from vision.model_store import ModelStore

    store = ModelStore()
    pointer = read_pointer(store, base_name(model))
    if len(pointer["stack"]) < 2:
        raise LearningError(f"{base_name(model)} has no learned version to roll back (it is {pointer['active']})")
    if not yes:
        if as_json:
            raise LearningError("rolling back with --json needs --yes")
        question = f"Make {base_name(model)} mean {pointer['stack'][-2]} again instead of {pointer['stack'][-1]}?"
        if not typer.confirm(question, err=True):
            raise typer.Exit(1)
    with _progress() as progress:
        return rollback(store, workspace, model, progress=_Bars(progress))
