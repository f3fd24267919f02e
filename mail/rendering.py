"""Messages from templates: `mail/templates/<name>.txt` (its first line is `Subject: ...`) and `<name>.html`.

Every message has both parts so that any mail client shows it well; the HTML part is autoescaped, so
what customers typed can never become markup in someone's inbox.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

TEMPLATES = Path(__file__).resolve().parent / "templates"

_environment = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,  # a missing value is a bug in the caller, not a blank in a customer's e-mail
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Letter:
    subject: str
    text: str
    html: str


def render(template: str, context: Mapping[str, Any]) -> Letter:
    """The subject, text and HTML of `template` filled with `context`."""
    text = _environment.get_template(f"{template}.txt").render(**context)
    first, _, rest = text.partition("\n")
    if not first.startswith("Subject: "):
        raise ValueError(f"mail template {template}.txt must start with a 'Subject: ' line")
    html = _environment.get_template(f"{template}.html").render(**context)
    return Letter(subject=first.removeprefix("Subject: ").strip(), text=rest.lstrip("\n"), html=html)


_URL = re.compile(r"https?://[^\s<>\"']+")


def _linked(line: str) -> Markup:
    """One line of plain text as HTML: escaped, its web addresses made links."""
    out, start = [], 0
    for found in _URL.finditer(line):
        out += [escape(line[start : found.start()]), Markup('<a href="{0}">{0}</a>').format(found.group())]
        start = found.end()
    out.append(escape(line[start:]))
    return Markup("").join(out)


def plain_letter(subject: str, body: str) -> Letter:
    """A message written as plain text (the older notices): its HTML part is the text, escaped, in
    paragraphs, with its links clickable, so it still reaches clients that prefer HTML."""
    paragraphs = [
        Markup("<br>\n").join(_linked(line) for line in block.splitlines())
        for block in re.split(r"\n\s*\n", body.strip())
        if block.strip()
    ]
    html = _environment.get_template("_plain.html").render(subject=subject, paragraphs=paragraphs)
    return Letter(subject=subject, text=body, html=html)
