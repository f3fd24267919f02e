"""The README's package table is the architecture: every import in the project must agree with it."""

from __future__ import annotations

import ast
import re
import sys

from shared_data import REPO_ROOT

WEB_ONLY = {"litestar", "uvicorn", "jinja2"}
TEMPLATES_TOO = {"mail": {"jinja2"}}  # e-mail is rendered from templates as pages are


def allowed_imports() -> dict[str, set[str] | None]:
    """package → the project packages it may import (None: any), read from the README's Layout table."""
    readme = (REPO_ROOT / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1]
    table: dict[str, set[str] | None] = {}
    for line in layout.splitlines():
        match = re.match(r"\| `(\w+)/` \| .* \| (.+) \|$", line)
        if match:
            package, allowed = match.groups()
            table[package] = None if allowed.strip() == "every package" else set(re.findall(r"`(\w+)`", allowed))
    return table


def imports_of(package: str) -> dict[str, set[str]]:
    """Top-level names imported anywhere in `package` (functions included) → the files importing them."""
    found: dict[str, set[str]] = {}
    for path in (REPO_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO_ROOT)))
    return found


def test_the_readme_table_names_every_package_of_the_project():
    table = allowed_imports()
    on_disk = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")}
    assert set(table) == on_disk, "README's Layout table and the packages on disk differ"
    assert table["vision"] == set() and table["index"] == set()


def test_every_import_follows_the_readme_table():
    table = allowed_imports()
    project = set(table)
    wrong = []
    for package, allowed in table.items():
        for imported, files in imports_of(package).items():
            if imported in project and imported != package and allowed is not None and imported not in allowed:
                wrong.append(f"{package} imports {imported} in {sorted(files)}")
            if imported in WEB_ONLY and package != "api" and imported not in TEMPLATES_TOO.get(package, set()):
                wrong.append(f"{package} imports {imported} (web only) in {sorted(files)}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_a_forbidden_import(tmp_path, monkeypatch):
    """The walker itself: an import inside a function of a lower package is caught."""
    package = tmp_path / "vision"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "leak.py").write_text("def f():\n    from catalog.db import Product\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    assert imports_of("vision") == {"catalog": {"vision/leak.py"}}
