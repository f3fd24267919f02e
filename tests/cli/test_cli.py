"""The `vitrine` command: help everywhere, `embed --json`, models list/info/export/pull, bench embed."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from vision.model_pull import hub_reachable

runner = CliRunner()


def _vitrine() -> str:
    found = shutil.which("vitrine", path=str(Path(sys.executable).parent))
    assert found, "the vitrine console script is not installed"
    return found


HELP_TARGETS = [
    [],
    ["models"],
    ["models", "list"],
    ["models", "pull"],
    ["models", "export"],
    ["embed"],
    ["bench", "embed"],
]


@pytest.mark.parametrize("args", HELP_TARGETS)
def test_help_everywhere(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_embed_json_reports_each_file_and_fails_if_any_is_refused(tiny, real_photos, tmp_path: Path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not a picture")
    out = subprocess.run(
        [_vitrine(), "embed", str(real_photos[3]), str(bad), str(real_photos[0]), "--model", "test-tiny", "--json"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert out.returncode == 1, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["ok"] for r in rows] == [True, False, True]
    assert rows[0]["dim"] == 64 and abs(rows[0]["norm"] - 1.0) < 1e-5
    assert "not an image" in rows[1]["error"]

    good_only = runner.invoke(app, ["embed", str(real_photos[3]), "--model", "test-tiny", "--json"])
    assert good_only.exit_code == 0
    exact = runner.invoke(app, ["embed", str(real_photos[0]), "--model", "test-tiny", "--json", "--exact"])
    assert exact.exit_code == 1 and "too many pixels" in exact.output  # 93 MP decoded in full: refused
    roomy = runner.invoke(
        app, ["embed", str(real_photos[0]), "--model", "test-tiny", "--exact", "--max-megapixels", "100", "--json"]
    )
    assert roomy.exit_code == 0, roomy.output
    strict = runner.invoke(app, ["embed", str(real_photos[3]), "--model", "test-tiny", "--max-mb", "0.01", "--json"])
    assert strict.exit_code == 1 and "too large" in strict.output


def test_models_list_and_info(tiny):
    result = runner.invoke(app, ["models", "list", "--json"])
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert rows["vitrine-lite2"]["default"] and not rows["vit-b-32-laion2b"]["default"]
    assert not rows["vit-b-32-laion2b"]["installed"]
    assert rows["test-tiny"]["installed"] and "marqo-ecommerce-b" in rows
    info = json.loads(runner.invoke(app, ["models", "info", "test-tiny"]).output)
    assert info["embed_dim"] == 64 and info["model_id"].startswith("test-tiny@") and info["files"]


def test_models_export_any_architecture_with_random_weights(vitrine_home: Path):
    result = runner.invoke(app, ["models", "export", "my-tiny", "--arch", "test-tiny", "--random-weights", "--no-int8"])
    assert result.exit_code == 0, result.output
    manifest = json.loads((vitrine_home / "models" / "my-tiny" / "manifest.json").read_text())
    assert manifest["architecture"] == "test-tiny" and "image.int8.onnx" not in manifest["files"]
    missing = runner.invoke(app, ["models", "export", "other", "--random-weights"])
    assert missing.exit_code == 2 and "--arch" in missing.output


def _no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record, and refuse, every attempt to open a network connection in this process."""
    attempts: list[object] = []

    def refuse(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        attempts.append(address)
        raise OSError("the test forbids network connections")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    return attempts


def test_pull_offline_fails_fast_and_says_what_to_do(monkeypatch: pytest.MonkeyPatch):
    out = subprocess.run(
        [_vitrine(), "models", "pull", "vit-b-32-laion2b"],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "400"},
    )
    assert out.returncode == 2
    message = " ".join(out.stderr.split())
    assert "vit-b-32-laion2b" in message and "network is unreachable" in message
    assert "by hand" in message and "vitrine models export vit-b-32-laion2b --weights" in message
    # fast because offline means no connection is even tried, so nothing can wait on a dead network
    attempts = _no_network(monkeypatch)
    offline = {"HF_HUB_OFFLINE": "1", "COLUMNS": "400"}
    for name in ("vit-b-32-laion2b", "marqo-ecommerce-b"):
        result = runner.invoke(app, ["models", "pull", name], env=offline)
        assert result.exit_code == 2, result.output
    assert "Marqo/marqo-ecommerce-embeddings-B" in " ".join(result.output.split())
    assert attempts == []


def test_network_probe_is_bounded(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # offline short-cuts the probe: test the probe itself
    assert hub_reachable("127.0.0.1", timeout=1.0) is False  # nothing listens on 443 here
    assert hub_reachable("no-such-host.invalid", timeout=1.0) is False
    # a connection attempt that never ends (a resolver that hangs): the probe gives up on its own deadline
    release, gave_up = threading.Event(), threading.Event()
    seen: list[tuple[object, float]] = []

    def hangs(address, timeout=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append((address, timeout))
        release.wait(60)  # far past the probe's deadline (0.7 s)
        gave_up.set()
        raise OSError("released by the test")

    monkeypatch.setattr(socket, "create_connection", hangs)
    try:
        assert hub_reachable("hub.example", timeout=0.2) is False
        assert not gave_up.is_set(), "the probe waited for the hanging attempt instead of its own deadline"
    finally:
        release.set()
    assert gave_up.wait(60)
    assert seen == [(("hub.example", 443), 0.2)]  # the attempt was made, and carries the timeout itself


@pytest.mark.slow  # a benchmark run end to end: torch, ONNX, int8 and the pipeline, timed
def test_bench_embed_prints_the_promised_figures(tiny):
    result = runner.invoke(
        app,
        [
            "bench",
            "embed",
            "--model",
            "test-tiny",
            "--random-weights",
            "--json",
            "--photos",
            "4",
            "--rounds",
            "1",
            "--batch",
            "4",
            "--baseline",
            "test-tiny",
        ],
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    # The baseline is timed in the same run, and the ratios are computed from the two measurements.
    baseline = figures["baseline"]
    assert baseline["architecture"] == "test-tiny" and baseline["onnx_images_per_s"] > 0
    expected = figures["onnx_images_per_s"] / baseline["onnx_images_per_s"]
    assert figures["ratios"]["onnx_vs_baseline"] == pytest.approx(expected, rel=0.02, abs=0.01)
    for key in (
        "torch_images_per_s",
        "onnx_images_per_s",
        "onnx_int8_images_per_s",
        "pipeline_images_per_s",
        "single_image_latency_ms_p50",
        "single_image_latency_ms_p99",
        "threads",
        "draft_decode_speedup",
    ):
        assert figures[key] > 0, key
    assert figures["ratios"]["onnx_vs_torch"] > 0


def test_bench_decode_times_real_photos(real_photos):
    result = runner.invoke(app, ["bench", "decode", str(real_photos[1]), "--repeats", "1"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["files"][0]
    assert row["megapixels"] > 20 and row["full_decode_ms"] > 0 and row["draft_decode_ms"] > 0


def test_bench_draft_reports_step_costs_and_how_close_draft_decoding_stays(tiny, real_photos):
    photos = [str(p) for p in real_photos[1:7]]  # large real JPEGs, where drafting changes the decode
    result = runner.invoke(app, ["bench", "draft", *photos, "--model", "test-tiny"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["photos"] == 6 and report["default_draft_size"] == report["factors"][0]["draft_size"]
    assert [row["draft_factor"] for row in report["factors"]] == [1.5, 1.25, 1.0]
    assert all(value > 0 for value in report["default_path_steps_ms"].values())
    for row in report["factors"]:
        assert -1.0 <= row["cosine_to_exact_min"] <= row["cosine_to_exact_p1"] <= 1.0001
        assert row["cosine_to_exact_min"] <= row["cosine_to_exact_mean"] <= 1.0001
    missing = runner.invoke(app, ["bench", "draft", photos[0], "--model", "no-such-model"])
    assert missing.exit_code != 0 and "no-such-model" in missing.output
