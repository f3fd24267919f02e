"""Settings of the web app, from the environment with sensible defaults."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from catalog.workspace import Workspace
from vision.decode import UPLOAD_LIMITS
from vision.model_store import DEFAULT_MODEL, chosen_model


def _secret(home: Path) -> str:
    """A per-installation secret kept in the data folder, so sessions survive a restart."""
    path = home / "secret.key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


@dataclass
class Settings:
    workspace: Workspace
    model: str = DEFAULT_MODEL
    backend: str = "onnx"
    payment_provider: str = "test"
    max_upload_bytes: int = UPLOAD_LIMITS.max_bytes  # one limit for the form, /api/requests and /api/search
    max_upload_pixels: int = UPLOAD_LIMITS.max_pixels
    claim_ttl_s: int = 15 * 60
    offer_ttl_hours: int = 48
    authorisation_ttl_hours: int = 7 * 24
    payment_grace_s: float = 120.0  # a pending payment older than this is no longer in flight: reconcile it
    payment_reconcile_s: float = 60.0  # how often to reconcile payments, after once at start-up (0: only then)
    request_ttl_hours: int = 7 * 24  # a queued request nobody took up expires after this
    instant_matches: int = 12
    search_window_ms: float = 4.0
    search_max_batch: int = 16
    index_refresh_s: float = 30.0  # how often to look for newly ingested products (0: never)
    secret_key: str = ""
    secure_cookies: bool = False

    def __post_init__(self) -> None:
        if not self.secret_key:
            self.secret_key = os.environ.get("VITRINE_SECRET_KEY") or _secret(self.workspace.home)

    @property
    def uploads_dir(self) -> Path:
        return self.workspace.images_dir

    @property
    def outbox_dir(self) -> Path:
        return self.workspace.home / "outbox"

    @classmethod
    def from_env(cls, model: str | None = None) -> Settings:
        return cls(
            workspace=Workspace.from_env(),
            model=chosen_model(model),
            backend=os.environ.get("VITRINE_BACKEND", "onnx"),
            payment_provider=os.environ.get("VITRINE_PAYMENTS", "test"),
            secure_cookies=os.environ.get("VITRINE_SECURE_COOKIES", "") == "1",
            search_window_ms=float(os.environ.get("VITRINE_SEARCH_WINDOW_MS", "4")),
            search_max_batch=int(os.environ.get("VITRINE_SEARCH_MAX_BATCH", "16")),
        )
