"""How mail leaves: SMTP when `VITRINE_SMTP_HOST` is set, otherwise .eml files (the demo), and how
hard delivery tries. Read from the environment so `vitrine serve` and `vitrine mail send` agree."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

SECURITY = ("starttls", "tls", "none")
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}
DEFAULT_SENDER = "Vitrine <no-reply@vitrine.invalid>"


class MailSettingsError(ValueError):
    """A mail setting that cannot work (a typo should stop start-up, not lose mail later)."""


@dataclass(frozen=True)
class MailSettings:
    smtp_host: str = ""  # empty: no SMTP, messages are written as .eml files under the data folder
    smtp_port: int = 587
    security: str = "starttls"  # starttls | tls (implicit, port 465) | none (a local relay)
    user: str = ""
    password: str = ""
    sender: str = DEFAULT_SENDER  # VITRINE_MAIL_FROM
    ca_file: str = ""  # a private CA for the SMTP server's certificate; empty: the system's
    staff_address: str = ""  # VITRINE_STAFF_EMAIL: the team mailbox told of customers' messages and payments
    timeout_s: float = 30.0
    max_attempts: int = 8  # then `failed`; with 30 s doubling that is about an hour of trying
    backoff_s: float = 30.0  # the wait after the first temporary failure, doubled each time
    backoff_max_s: float = 3600.0
    lease_s: float = 300.0  # a message `sending` longer than this is presumed lost in a crash and retried
    poll_s: float = 30.0  # the sender's longest sleep (it also wakes when a message is enqueued)

    def __post_init__(self) -> None:
        if self.security not in SECURITY:
            raise MailSettingsError(
                f"VITRINE_SMTP_SECURITY must be one of {', '.join(SECURITY)}, not {self.security!r}"
            )
        if not 0 < self.smtp_port < 65536:
            raise MailSettingsError(f"VITRINE_SMTP_PORT must be a port number, not {self.smtp_port}")
        if self.max_attempts < 1:
            raise MailSettingsError("max_attempts must be at least 1")

    @property
    def smtp(self) -> bool:
        """Whether mail goes out over SMTP (otherwise into .eml files)."""
        return bool(self.smtp_host)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MailSettings:
        env = os.environ if environ is None else environ
        security = env.get("VITRINE_SMTP_SECURITY", "starttls").strip().lower() or "starttls"
        port = env.get("VITRINE_SMTP_PORT", "").strip()
        try:
            number = int(port) if port else DEFAULT_PORTS.get(security, 587)
        except ValueError:
            raise MailSettingsError(f"VITRINE_SMTP_PORT must be a number, not {port!r}") from None
        return cls(
            smtp_host=env.get("VITRINE_SMTP_HOST", "").strip(),
            smtp_port=number,
            security=security,
            user=env.get("VITRINE_SMTP_USER", ""),
            password=env.get("VITRINE_SMTP_PASSWORD", ""),
            sender=env.get("VITRINE_MAIL_FROM", "").strip() or DEFAULT_SENDER,
            ca_file=env.get("VITRINE_SMTP_CA_FILE", "").strip(),
            staff_address=env.get("VITRINE_STAFF_EMAIL", "").strip(),
        )


def public_url(configured: str | None = None) -> str:
    """The site's absolute base for links in mail (no request to take it from): the configured public
    URL, else `VITRINE_PUBLIC_URL`, else the demo's own address."""
    base = configured or os.environ.get("VITRINE_PUBLIC_URL", "") or "http://127.0.0.1:8000"
    return base.rstrip("/")
