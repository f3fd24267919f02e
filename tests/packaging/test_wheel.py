"""`pip install .` (not editable) gives a working `vitrine`: the wheel carries every package and the
files they read at run time (templates, static files, mappings, migrations, model manifests, the
demo model). Built and installed into a scratch virtual environment, run from another directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from shared_data import REPO_ROOT

pytestmark = pytest.mark.slow

RUNTIME_FILES = (
    "api/templates/base.html",
    "api/static/app.css",
    "api/static/app.js",
    "catalog_ingest/mappings/flipkart.toml",
    "migrations/env.py",
    "migrations/script.py.mako",
    "migrations/versions/0001_baseline.py",
    "models/demo/manifest.json",
    "models/demo/demo.safetensors",
    "models/open_clip_configs/vitrine-demo.json",
    "models/test-tiny/manifest.json",
)


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _source_copy(target: Path) -> Path:
    """The files git would hand a fresh clone (tracked and new, not ignored), so the build writes
    nothing into the working tree and sees none of its build leftovers."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_the_wheel_installs_and_runs_from_another_directory(tmp_path):
    wheels = tmp_path / "wheels"
    source = _source_copy(tmp_path / "source")
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        tmp_path,
    )
    (wheel,) = wheels.glob("vitrine-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    missing = [f for f in RUNTIME_FILES if f not in names]
    assert not missing, f"the wheel lacks {missing}"
    assert not any(name.startswith("tests/") for name in names)
    packages = {path.parent.name for path in REPO_ROOT.glob("*/__init__.py")}
    modules = {str(path.relative_to(source)) for package in packages for path in (source / package).rglob("*.py")}
    assert modules - names == set(), "modules of the project missing from the wheel"

    # A scratch venv that sees this environment's installed dependencies but not the repository (a
    # path in a .pth file is added without running the .pth files inside it, so the editable
    # install's finder stays out): the wheel must bring the project's own code and data.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    purelib = Path(
        _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip()
    )
    dependencies = Path(
        _run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip()
    )
    (purelib / "dependencies.pth").write_text(f"{dependencies}\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        tmp_path,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["VITRINE_HOME"] = str(tmp_path / "home")
    where = _run([str(python), "-c", "import api, vision; print(api.__file__); print(vision.__file__)"], elsewhere, env)
    assert str(REPO_ROOT) not in where and str(venv) in where, where

    vitrine = str(venv / "bin" / "vitrine")
    assert "Commands" in _run([vitrine, "--help"], elsewhere, env)
    models = {row["name"]: row for row in json.loads(_run([vitrine, "models", "list", "--json"], elsewhere, env))}
    assert {"demo", "test-tiny", "vit-b-32-laion2b"} <= set(models)
    assert json.loads(_run([vitrine, "db", "current", "--json"], elsewhere, env))["state"] == "fresh"
    _run([vitrine, "db", "upgrade"], elsewhere, env)  # the migrations are found inside the wheel
    current = json.loads(_run([vitrine, "db", "current", "--json"], elsewhere, env))
    assert current["state"] == "current"
    prepared = subprocess.run(
        [vitrine, "demo", "--prepare-only", "--products", "40"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert prepared.returncode == 0, prepared.stderr[-3000:]
    assert "operator" in prepared.stderr and "/login" in prepared.stderr
