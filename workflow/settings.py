"""Settings of the web app, from the environment with sensible defaults."""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from catalog.workspace import Workspace
from mail.settings import MailSettings
from vision.decode import UPLOAD_LIMITS
from vision.model_store import DEFAULT_MODEL, chosen_model

DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"  # `vitrine serve`'s own address; set VITRINE_PUBLIC_URL when deployed
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def secure_by_default() -> bool:
    """Cookies marked Secure (sent over HTTPS only) unless VITRINE_SECURE_COOKIES says otherwise (1/0)
    or the public URL is this machine (the demo on http://127.0.0.1 has no TLS to send them over)."""
    given = os.environ.get("VITRINE_SECURE_COOKIES", "").strip().lower()
    if given:
        return given not in ("0", "false", "no", "off")
    host = urlsplit(os.environ.get("VITRINE_PUBLIC_URL", "") or DEFAULT_PUBLIC_URL).hostname or ""
    return host not in LOCAL_HOSTS


def _secret(home: Path) -> str:
    """A per-installation secret kept in the data folder, so sessions survive a restart."""
    path = home / "secret.key"
    if not path.exists():  # created 0600 from the start: never readable by others, not even for a moment
        with (
            contextlib.suppress(FileExistsError),
            os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out,
        ):
            out.write(secrets.token_hex(32))
    return path.read_text().strip()


ACCESS_MODES = ("open", "waitlist")


def _access_mode(value: str) -> str:
    """VITRINE_ACCESS, checked: a typo must not open a closed beta (or close an open site) silently."""
    mode = value.strip().lower() or "open"
    if mode not in ACCESS_MODES:
        raise ValueError(f"VITRINE_ACCESS must be one of {', '.join(ACCESS_MODES)}, not {value!r}.")
    return mode


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
    sweep_s: float = 30.0  # how often the background task applies the time limits (workflow.sweeper; 0: never)
    instant_matches: int = 12
    search_window_ms: float = 4.0
    search_max_batch: int = 16
    index_refresh_s: float = 30.0  # how often to look for newly ingested products (0: never)
    ingest_workers: int = 2  # catalog upload jobs run at once, of different vendors (0: none in this process)
    secret_key: str = ""
    secure_cookies: bool = False  # from the environment: on unless served at a local address (secure_by_default)
    require_admin_totp: bool = False  # VITRINE_REQUIRE_ADMIN_TOTP=1: admins without TOTP cannot sign in
    # Limits (issue 17): see api/limits.py, api/rate_limits.py and workflow/sign_in_throttle.py.
    max_form_bytes: int = 32 * 1024  # a text form's or JSON body's bytes; upload routes get the photo limit
    rate_limits: str = ""  # per-rule overrides, e.g. "sign_in=5/minute,search=off"; "off" disables every rule
    sign_in_failures: int = 5  # wrong passwords for one account before it is locked for a while
    sign_in_lockout_s: float = 60.0  # the first lock; each further failure doubles it (at most an hour)
    sign_in_client_failures: int = 20  # wrong sign-ins from one address, any accounts, before it is locked
    mails_per_address_hour: int = 5  # request mails to one address per hour; beyond, the request is kept unmailed
    body_timeout_s: float = 20.0  # longest wait for the next piece of a request body (then 408)
    public_url: str = ""  # the base of every link; empty: the request's own (allowed) host
    allowed_hosts: tuple[str, ...] = ()  # Host headers served; empty: the public URL's host and localhost
    # Closed beta (issue 16, access/): "waitlist" makes sending a photo request need an invitation.
    access: str = "open"  # open | waitlist
    referral_bonus: int = 3  # places a waiting person moves up for each verified person they referred
    metrics_from: str = ""  # networks that may read /metrics (api/metrics.py); empty: this machine only
    mail: MailSettings = field(default_factory=MailSettings.from_env)  # SMTP (VITRINE_SMTP_*) or .eml files

    def __post_init__(self) -> None:
        if not self.secret_key:
            self.secret_key = os.environ.get("VITRINE_SECRET_KEY") or _secret(self.workspace.home)

    @property
    def uploads_dir(self) -> Path:
        return self.workspace.images_dir

    @property
    def outbox_dir(self) -> Path:
        return self.workspace.home / "outbox"

    def trusted_hosts(self) -> list[str]:
        """The Host headers to serve: the list given, else the public URL's host and this machine's
        names; an app made in code without a public URL (tests) serves any host ("*")."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        if not self.public_url:
            return ["*"]
        return list(dict.fromkeys([urlsplit(self.public_url).hostname or "localhost", *LOCAL_HOSTS]))

    @classmethod
    def from_env(cls, model: str | None = None) -> Settings:
        return cls(
            workspace=Workspace.from_env(),
            model=chosen_model(model),
            backend=os.environ.get("VITRINE_BACKEND", "onnx"),
            payment_provider=os.environ.get("VITRINE_PAYMENTS", "test"),
            secure_cookies=secure_by_default(),
            require_admin_totp=os.environ.get("VITRINE_REQUIRE_ADMIN_TOTP", "") == "1",
            search_window_ms=float(os.environ.get("VITRINE_SEARCH_WINDOW_MS", "4")),
            search_max_batch=int(os.environ.get("VITRINE_SEARCH_MAX_BATCH", "16")),
            ingest_workers=int(os.environ.get("VITRINE_INGEST_WORKERS", "2")),
            rate_limits=os.environ.get("VITRINE_RATE_LIMITS", ""),
            public_url=os.environ.get("VITRINE_PUBLIC_URL", DEFAULT_PUBLIC_URL).rstrip("/"),
            allowed_hosts=tuple(h.strip() for h in os.environ.get("VITRINE_ALLOWED_HOSTS", "").split(",") if h.strip()),
            access=_access_mode(os.environ.get("VITRINE_ACCESS", "open")),
            referral_bonus=int(os.environ.get("VITRINE_REFERRAL_BONUS", "3")),
            metrics_from=os.environ.get("VITRINE_METRICS_FROM", ""),
        )
