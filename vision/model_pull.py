"""`vitrine models pull`: download pretrained weights and export them, or fail fast and helpfully offline."""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from vision.errors import ModelUnavailable
from vision.manifest import ModelManifest
from vision.model_store import ModelStore, export_into_store

HUB_HOST = "huggingface.co"
PROBE_TIMEOUT_S = 4.0


def hub_reachable(host: str = HUB_HOST, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub opens in `timeout` seconds, DNS included.

    Runs in a thread with its own deadline because a broken resolver can block far longer
    than the socket timeout.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False

    def connect() -> bool:
        with socket.create_connection((host, 443), timeout=timeout):
            return True

    pool = ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(connect).result(timeout=timeout + 0.5)
    except (OSError, FutureTimeout):
        return False
    finally:
        pool.shutdown(wait=False)


def manual_install_hint(spec: ModelManifest) -> str:
    source = spec.source
    if source.get("kind") == "hf-hub":
        repo = source["id"]
        where = (
            f"download the repository https://huggingface.co/{repo} (open_clip_config.json, "
            f"open_clip_model.safetensors and the tokenizer files) into a folder"
        )
    else:
        repo = source.get("hf_hub", "")
        where = (
            f"download https://huggingface.co/{repo}/resolve/main/open_clip_model.safetensors"
            if repo
            else f"download the open_clip weights for {spec.architecture} / {source.get('pretrained')}"
        )
    return (
        f"To install it by hand: on a machine with internet access, {where}; copy it here and run "
        f"`vitrine models export {spec.name} --weights PATH`."
    )


def pull_model(name: str, store: ModelStore) -> ModelManifest:
    """Fetch and export a catalogue model. Offline, fails within seconds and says what to do."""
    spec = store.catalogue().get(name)
    if spec is None:
        raise ModelUnavailable(f"Unknown model {name!r}; `vitrine models list` shows the catalogue.")
    if spec.source.get("kind") not in ("open_clip", "hf-hub"):
        raise ModelUnavailable(f"Model {name!r} has nothing to download ({spec.source_label}).")
    if not hub_reachable():
        raise ModelUnavailable(
            f"Cannot pull model {name!r} ({spec.source_label}): the network is unreachable "
            f"({HUB_HOST} did not answer within {PROBE_TIMEOUT_S:.0f} s). " + manual_install_hint(spec)
        )
    try:
        return export_into_store(store, spec)
    except ModelUnavailable:
        raise
    except Exception as exc:
        raise ModelUnavailable(
            f"Downloading model {name!r} ({spec.source_label}) failed: {exc}. " + manual_install_hint(spec)
        ) from None
