"""`vitrine demo`: the whole product on one machine with no network, in one command.

The first run generates the demo catalog, ingests it with the committed demo model and creates a demo
operator; every step leaves a marker in the data folder, so a second run skips straight to serving.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from vision.model_store import DEFAULT_MODEL

err = Console(stderr=True)
DEMO_OPERATOR = "demo-operator"


@dataclass(frozen=True)
class DemoState:
    catalog: Path
    operator: str
    password: str  # never printed: the console is the server's log (see password_file)


def password_file(home: Path) -> Path:
    """Where the demo operator's password is kept (0600): named on the console instead of the password."""
    return home / "demo" / "operator-password"


def _generate_catalog(root: Path, seed: int, products: int) -> None:
    from demo.catalog import write_demo_catalog

    marker = root / ".generated"
    if marker.is_file() and json.loads(marker.read_text()) == {"seed": seed, "products": products}:
        return
    err.print(f"generating the demo catalog: {products} products (seed {seed}) in {root}")
    write_demo_catalog(root, seed, products, progress=None)
    marker.write_text(json.dumps({"seed": seed, "products": products}))


def _ingest_catalog(root: Path, model: str, backend: str) -> None:
    from catalog.workspace import Workspace
    from catalog_ingest.ingest import ingest_catalog
    from demo.catalog import DemoCatalog
    from vision.embedder import open_embedder

    embedder = open_embedder(model, backend)  # type: ignore[arg-type]
    marker = root / f".ingested-{embedder.manifest.model_id.replace('/', '_')}"
    if marker.is_file():
        return
    workspace = Workspace.from_env()
    for vendor, path in DemoCatalog.open(root).vendor_files.items():
        summary = ingest_catalog(path, vendor, embedder, workspace)
        err.print(f"ingested {vendor}: {summary.accepted} products")
    marker.write_text(embedder.manifest.model_id)


def _demo_operator(home: Path) -> tuple[str, str]:
    """The demo operator account; its password is generated once and kept in the data folder."""
    from sqlalchemy import select

    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace
    from workflow.models import User
    from workflow.users import add_user

    secret = password_file(home)
    secret.parent.mkdir(parents=True, exist_ok=True)
    if not secret.is_file():  # readable by its owner only, from the moment it exists
        with os.fdopen(os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
            out.write(secrets.token_urlsafe(12))
    password = secret.read_text().strip()
    engine = make_engine(Workspace.from_env().database_url)
    try:
        sessions = session_factory(engine)
        with sessions() as session:
            exists = session.scalar(select(User.id).where(User.name == DEMO_OPERATOR)) is not None
        if not exists:
            add_user(sessions, DEMO_OPERATOR, "operator", password)
    finally:
        engine.dispose()
    return DEMO_OPERATOR, password


#: The demo's exchange rates (units per 1 EUR), dated: a budget in INR, USD or GBP is compared with
#: the catalog's EUR prices through them, and the pages show the converted amount with this date.
DEMO_RATES = (
    "currency,rate,as_of,source\n"
    "INR,90.50,2026-12-01,demo table\n"
    "USD,1.05,2026-12-01,demo table\n"
    "GBP,0.84,2026-12-01,demo table\n"
)


def _demo_rates() -> None:
    """Seed the rates table once (an admin's later edits are kept)."""
    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace
    from workflow import rates

    engine = make_engine(Workspace.from_env().database_url)
    try:
        sessions = session_factory(engine)
        with sessions() as session:
            seeded = bool(rates.all_rates(session))
        if not seeded:
            rates.set_rates(sessions, rates.read_csv(DEMO_RATES), "demo")
    finally:
        engine.dispose()


def _demo_stores() -> None:
    """Stores with stock for each demo vendor (demo/stores.py), once: "nearby" has shops to show."""
    from catalog.db import make_engine, session_factory
    from catalog.workspace import Workspace
    from demo.stores import seed_demo_stores

    engine = make_engine(Workspace.from_env().database_url)
    try:
        created = seed_demo_stores(session_factory(engine))
        if any(created.values()):
            err.print(f"demo stores: {sum(created.values())} in France, with stock")
    finally:
        engine.dispose()


def prepare_demo(model: str, backend: str, seed: int, products: int) -> DemoState:
    """Catalog, ingest and operator account; each step is skipped when already done.

    The database is checked first, so a data folder that needs `vitrine db upgrade` is refused
    before minutes of catalog generation, not after."""
    from catalog.db import make_engine
    from catalog.workspace import Workspace

    workspace = Workspace.from_env()
    make_engine(workspace.database_url).dispose()
    home = workspace.home
    root = home / "demo" / "catalog"
    _generate_catalog(root, seed, products)
    _ingest_catalog(root, model, backend)
    operator, password = _demo_operator(home)
    _demo_rates()
    _demo_stores()
    return DemoState(root, operator, password)


def demo_command(
    ctx: typer.Context,
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Model to run: the default vitrine-lite2, the small `demo` model, or e.g. vit-b-32-laion2b.",
        ),
    ] = DEFAULT_MODEL,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    seed: Annotated[int, typer.Option(help="Seed of the generated catalog.")] = 7,
    products: Annotated[int, typer.Option(help="Products in the generated catalog.")] = 2000,
    prepare_only: Annotated[bool, typer.Option("--prepare-only", help="Build everything, do not serve.")] = False,
    waitlist: Annotated[
        bool, typer.Option("--waitlist", help="Closed beta: a photo request needs an invitation (VITRINE_ACCESS).")
    ] = False,
) -> None:
    """Generate and ingest the demo catalog, create a demo operator, and serve the app on localhost."""
    from api.cli import serve_command
    from migrations.runner import SchemaError
    from vision.errors import ModelUnavailable

    if ctx.invoked_subcommand is not None:
        return
    try:
        state = prepare_demo(model, "onnx", seed, products)
    except (ModelUnavailable, SchemaError) as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    base = f"http://{host}:{port}"
    err.print(f"[bold]customer[/]   {base}/")
    where = password_file(state.catalog.parent.parent)
    err.print(f"[bold]operator[/]   {base}/login   (user {state.operator}, password in {where})")
    err.print(f"[bold]API docs[/]   {base}/schema   (OpenAPI JSON: {base}/schema/openapi.json)")
    if waitlist:
        err.print(f"[bold]waitlist[/]   {base}/waitlist   (closed beta; invitations at {base}/admin/waitlist)")
        err.print("[bold]admin[/]      create one with: vitrine users add NAME --role admin")
    if prepare_only:
        return
    os.environ["VITRINE_MODEL"] = model
    if waitlist:
        os.environ["VITRINE_ACCESS"] = "waitlist"
    serve_command(host=host, port=port, model=model)
