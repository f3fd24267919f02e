"""What the access tests share: the mail an outbox wrote as .eml files, and a real server in
closed-beta (waitlist) mode whose mail goes to such files."""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from pathlib import Path

from catalogs import make_rows, write_csv
from webapp import ServerThread

from api.app import create_app
from catalog.workspace import Workspace
from catalog_ingest.ingest import ingest_catalog
from mail.outbox import FileOutbox
from workflow.payments import TestPaymentProvider
from workflow.settings import Settings


def small_catalog(folder: Path, embedder) -> Workspace:  # type: ignore[no-untyped-def]
    """Six products of one vendor in three categories (earrings, lamps, mugs): enough to search and
    to choose categories from, quick to ingest."""
    workspace = Workspace(folder / "home")
    (folder / "acme").mkdir()
    ingest_catalog(write_csv(folder / "acme" / "catalog.csv", make_rows(6)), "acme", embedder, workspace)
    return workspace


def mails_to(folder: Path, address: str) -> list[str]:
    """The plain-text bodies of the .eml files in `folder` sent to `address`, oldest first."""
    bodies = []
    for path in sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes())
        if message["To"] == address:
            part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
            bodies.append(part.get_payload(decode=True).decode())
    return bodies


@dataclass
class AccessSite:
    url: str
    app: object
    outbox: FileOutbox

    @property
    def sessions(self):  # type: ignore[no-untyped-def]
        return self.app.state.sessions  # type: ignore[attr-defined]

    def mails_to(self, address: str) -> list[str]:
        return mails_to(self.outbox.folder, address)

    def link(self, address: str, path: str) -> str:
        """The path (from `path` on) of the newest `path/...` link mailed to `address`."""
        bodies = self.mails_to(address)
        found = re.findall(rf"{re.escape(self.url)}({path}/\S+)", bodies[-1]) if bodies else []
        assert found, f"no {path} link in the mail to {address}: {bodies}"
        return found[-1]


def start_access_site(workspace: Workspace, outbox_folder: Path, **overrides) -> tuple[AccessSite, ServerThread]:  # type: ignore[no-untyped-def]
    """A real server in closed-beta mode (referral bonus 2), mail as .eml files in `outbox_folder`,
    rate limits off (the tests join many times from one address)."""
    overrides.setdefault("index_refresh_s", 0)
    overrides.setdefault("access", "waitlist")
    overrides.setdefault("referral_bonus", 2)
    settings = Settings(workspace=workspace, model="test-tiny", **overrides)
    if hasattr(settings, "rate_limits"):
        settings.rate_limits = "off"
    outbox = FileOutbox(outbox_folder)
    app = create_app(settings, payments=TestPaymentProvider(), outbox=outbox)
    server = ServerThread(app)
    return AccessSite(server.start(), app, outbox), server
