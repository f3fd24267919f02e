"""Command-line surface of the vision core: `vitrine models ...` and `vitrine embed`.

Heavy imports (torch, onnxruntime) happen inside the commands, so `--help` is instant and
the ONNX commands never load torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vision.errors import ImageRejected, ModelUnavailable
from vision.manifest import ModelManifest
from vision.model_store import DEFAULT_MODEL, PULL_DEFAULT, ModelStore
from vision.preprocess import PreprocessConfig

err = Console(stderr=True)

models_app = typer.Typer(help="List, pull, export and inspect embedding models.", no_args_is_help=True)

ModelOption = Annotated[
    str, typer.Option("--model", "-m", help="Model name (see `vitrine models list`) or a folder with a manifest.")
]


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show the model catalogue and which models are installed here."""
    store = ModelStore()
    installed = store.installed()
    rows = []
    for name, spec in {**store.catalogue(), **installed}.items():
        rows.append(
            {
                "name": name,
                "source": spec.source_label,
                "embed_dim": spec.embed_dim,
                "installed": name in installed,
                "default": name == DEFAULT_MODEL,
                "description": spec.description,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("name", "source", "dim", "installed")
    for row in rows:
        marker = " (default)" if row["default"] else ""
        table.add_row(row["name"] + marker, row["source"], str(row["embed_dim"]), "yes" if row["installed"] else "no")
    Console().print(table)
    err.print(f"models folder: {store.installed_root}")


@models_app.command("info")
def models_info(name: Annotated[str, typer.Argument(help="Model name.")]) -> None:
    """Print a model's manifest (installed if it is, else the catalogue entry)."""
    store = ModelStore()
    manifest = store.installed().get(name) or store.catalogue().get(name)
    if manifest is None:
        _fail(f"unknown model {name!r}")
    print(json.dumps({**manifest.to_json(), "model_id": manifest.model_id}, indent=2))


@models_app.command("pull")
def models_pull(
    name: Annotated[str, typer.Argument(help="Catalogue model to download and export.")] = PULL_DEFAULT,
) -> None:
    """Download pretrained weights (open_clip / Hugging Face hub) and export them to ONNX."""
    from vision.model_pull import pull_model

    try:
        manifest = pull_model(name, ModelStore())
    except ModelUnavailable as exc:
        _fail(str(exc))
    err.print(f"installed {manifest.name} ({manifest.model_id})")


@models_app.command("export")
def models_export(
    name: Annotated[str, typer.Argument(help="Name to install under; a catalogue name reuses its architecture.")],
    architecture: Annotated[str | None, typer.Option("--arch", help="open_clip architecture, e.g. ViT-B-32.")] = None,
    pretrained: Annotated[str | None, typer.Option(help="open_clip pretrained tag (downloads).")] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Local checkpoint file, or a folder with open_clip_config.json and weights.")
    ] = None,
    random_weights: Annotated[bool, typer.Option("--random-weights", help="Random weights (seed 0).")] = False,
    int8: Annotated[bool, typer.Option("--int8/--no-int8", help="Also write the int8 quantised towers.")] = True,
) -> None:
    """Export any open_clip model + weights to ONNX files plus a manifest. Needs the torch extra."""
    store = ModelStore()
    spec = store.catalogue().get(name)
    if spec is None:
        if architecture is None:
            _fail(f"{name!r} is not in the catalogue: give --arch (and --pretrained, --weights or --random-weights)")
        spec = ModelManifest(
            name=name, architecture=architecture, source={}, embed_dim=0, preprocess=PreprocessConfig()
        )
    elif architecture:
        spec.architecture = architecture
    if random_weights:
        spec.source = {"kind": "random", "seed": 0}
    elif pretrained:
        spec.source = {"kind": "open_clip", "pretrained": pretrained}
    elif weights is None and not spec.source:
        _fail("say where the weights come from: --pretrained TAG, --weights PATH or --random-weights")
    try:
        from vision.export import export_model
    except ImportError as exc:
        _fail(f"export needs torch and open_clip (`pip install -e '.[torch]'`): {exc}")
    try:
        manifest = export_model(
            spec, store.installed_dir(name), weights=str(weights) if weights else None, quantize=int8
        )
    except ModelUnavailable as exc:
        _fail(str(exc))
    err.print(f"exported {manifest.name} ({manifest.model_id}, {manifest.embed_dim}-d) to {store.installed_dir(name)}")


def embed_command(
    files: Annotated[list[Path], typer.Argument(help="Image files to embed.")],
    model: ModelOption = DEFAULT_MODEL,
    backend: Annotated[str, typer.Option(help="onnx, onnx-int8 or torch.")] = "onnx",
    exact: Annotated[bool, typer.Option("--exact", help="Decode JPEGs at full size (no draft fast path).")] = False,
    max_mb: Annotated[float, typer.Option(help="Refuse files larger than this many megabytes.")] = 25.0,
    max_megapixels: Annotated[float, typer.Option(help="Refuse images that decode to more pixels.")] = 50.0,
    min_side: Annotated[int, typer.Option(help="Refuse images smaller than this on either side.")] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per file.")] = False,
) -> None:
    """Embed image files; prints each embedding's dimension and norm, or why the file was refused.

    Exits 1 if any file was refused.
    """
    import numpy as np

    from vision.decode import DecodeLimits
    from vision.embedder import BACKENDS, open_embedder
    from vision.pipeline import load_pixels

    if backend not in BACKENDS:
        _fail(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    try:
        embedder = open_embedder(model, backend)  # type: ignore[arg-type]
    except ModelUnavailable as exc:
        _fail(str(exc))
    limits = DecodeLimits(max_bytes=int(max_mb * 1e6), max_pixels=int(max_megapixels * 1e6), min_side=min_side)
    refused = 0
    for path in files:
        try:
            pixels = load_pixels(path, embedder.manifest.preprocess, limits, fast=not exact)
            vector = embedder.embed_pixels(pixels[None])[0]
            row = {
                "file": str(path),
                "ok": True,
                "dim": int(vector.shape[0]),
                "norm": round(float(np.linalg.norm(vector)), 6),
            }
        except ImageRejected as exc:
            refused += 1
            row = {"file": str(path), "ok": False, "error": str(exc)}
        if as_json:
            print(json.dumps(row))
        elif row["ok"]:
            print(f"{path}: {row['dim']}-d, norm {row['norm']}")
        else:
            print(f"{path}: refused: {row['error']}")
    if refused:
        raise typer.Exit(1)
