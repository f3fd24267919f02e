"""A learned adapter as part of a model: the towers' output times a square matrix, renormalised.

`vitrine learn` (package `learning`) fits a DxD matrix W to operators' confirmed pairs; a learned
version of a model is then an ordinary exported model whose ONNX graphs end in `MatMul(W)` and an
L2 normalisation, so `open_embedder(name)` serves it like any other model and the serving path
stays torch-free and unchanged. Both towers get the same W: image and text vectors stay in one space.

Composition needs no chain of adapters: normalize(normalize(x W1) W2) == normalize(x W1 W2), since
scaling a row commutes with a linear map. A version learned from a version therefore has the same
graph as its parent with the adapter's matrix replaced by the product (`ADAPTER_MATRIX` in the graph);
the folder keeps W relative to its parent (`ADAPTER_FILE`), which `vitrine learn --rollback` inverts.

Building a version needs the `onnx` package (the `[torch]` extra), imported only here, only then.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from vision.errors import ModelUnavailable
from vision.manifest import (
    IMAGE_INT8_ONNX,
    IMAGE_ONNX,
    TEXT_INT8_ONNX,
    TEXT_ONNX,
    ModelManifest,
    install_folder,
    sha256_file,
)

ADAPTER_FILE = "adapter.npy"  # W relative to the parent version
ADAPTER_MATRIX = "vitrine_adapter_matrix"  # the initializer in the graph: W relative to the base model
TOWERS = (IMAGE_ONNX, TEXT_ONNX, IMAGE_INT8_ONNX, TEXT_INT8_ONNX)
_EPS = 1e-12


def project(vectors: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """normalize(v @ W) in float32: what an adapted tower outputs for a parent's unit vector v."""
    out = np.asarray(vectors, np.float32) @ np.asarray(matrix, np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.maximum(norms, np.float32(_EPS))).astype(np.float32, copy=False)


def adapter_of(directory: Path) -> np.ndarray | None:
    """The matrix a version folder applies on top of its parent's, or None for a plain model."""
    path = Path(directory) / ADAPTER_FILE
    return np.load(path) if path.is_file() else None


def append_adapter(source: Path, target: Path, matrix: np.ndarray) -> None:
    """Write `source`'s graph to `target` with its (only) output mapped through normalize(· @ matrix).

    A graph that already ends in an adapter gets its matrix multiplied by `matrix` instead, so
    versions of versions stay one MatMul deep. The output keeps its name (the embedders read the first
    output whatever its name, but tools may not)."""
    onnx, helper, numpy_helper = _onnx()
    model = onnx.load(str(source))
    graph = model.graph
    matrix = np.asarray(matrix, np.float32)
    existing = next((i for i in graph.initializer if i.name == ADAPTER_MATRIX), None)
    if existing is not None:
        combined = numpy_helper.to_array(existing).astype(np.float32) @ matrix
        existing.CopyFrom(numpy_helper.from_array(combined.astype(np.float32), ADAPTER_MATRIX))
        onnx.save(model, str(target))
        return
    if len(graph.output) != 1:
        raise ValueError(f"{source} has {len(graph.output)} outputs; an adapter needs exactly one")
    output = graph.output[0]
    dim = output.type.tensor_type.shape.dim
    width = dim[-1].dim_value if len(dim) == 2 else 0
    if width and width != matrix.shape[0]:
        raise ValueError(f"{source} outputs {width}-d vectors; the adapter is {matrix.shape[0]}x{matrix.shape[1]}")
    raw = "vitrine_adapter_input"
    for node in graph.node:  # the tower's last node now feeds the adapter
        node.output[:] = [raw if name == output.name else name for name in node.output]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    graph.initializer.append(numpy_helper.from_array(matrix, ADAPTER_MATRIX))
    graph.initializer.append(numpy_helper.from_array(np.asarray([_EPS], np.float32), "vitrine_adapter_eps"))
    projected, norm, floor = "vitrine_adapter_projected", "vitrine_adapter_norm", "vitrine_adapter_floor"
    nodes = [helper.make_node("MatMul", [raw, ADAPTER_MATRIX], [projected], name="vitrine_adapter_matmul")]
    if opset >= 18:  # ReduceL2 takes its axes as an input from opset 18 on
        graph.initializer.append(numpy_helper.from_array(np.asarray([-1], np.int64), "vitrine_adapter_axes"))
        nodes.append(
            helper.make_node(
                "ReduceL2", [projected, "vitrine_adapter_axes"], [norm], keepdims=1, name="vitrine_adapter_l2"
            )
        )
    else:
        nodes.append(
            helper.make_node("ReduceL2", [projected], [norm], axes=[-1], keepdims=1, name="vitrine_adapter_l2")
        )
    nodes.append(helper.make_node("Max", [norm, "vitrine_adapter_eps"], [floor], name="vitrine_adapter_floor"))
    nodes.append(helper.make_node("Div", [projected, floor], [output.name], name="vitrine_adapter_div"))
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def build_adapted(
    parent_dir: Path, parent: ModelManifest, name: str, matrix: np.ndarray, out_dir: Path, extra: dict | None = None
) -> ModelManifest:
    """A complete model folder `out_dir` named `name`: the parent's files, its towers adapted by `matrix`.

    Written in a temporary sibling folder and renamed into place, so a crash never leaves a folder
    that looks like a model. The manifest's source is `{"kind": "adapted", "parent": ..., "matrix":
    "adapter.npy", ...}` plus `extra`; its files and their digests (hence the model id) are the new ones."""
    matrix = np.asarray(matrix, np.float32)
    if matrix.shape != (parent.embed_dim, parent.embed_dim):
        raise ValueError(f"the adapter must be {parent.embed_dim}x{parent.embed_dim}, not {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("the adapter holds non-finite values")
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for file in parent.files:
            path = Path(parent_dir) / file
            if not path.is_file():
                continue  # listed but absent (e.g. int8 never written): left out of the new manifest
            if file in TOWERS:
                append_adapter(path, work / file, matrix)
            else:
                shutil.copyfile(path, work / file)
        np.save(work / ADAPTER_FILE, matrix)
        base = parent.source.get("base", parent.name) if parent.source.get("kind") == "adapted" else parent.name
        source = {
            "kind": "adapted",
            "parent": parent.name,
            "parent_model_id": parent.model_id,
            "base": base,
            "matrix": ADAPTER_FILE,
            **(extra or {}),
        }
        files = {p.name: sha256_file(p) for p in sorted(work.iterdir()) if p.is_file() and p.name != ADAPTER_FILE}
        manifest = replace(
            parent,
            name=name,
            source=source,
            description=f"{parent.name} adapted to operators' confirmed pairs by `vitrine learn`.",
            files=files,
        )
        manifest.save(work)
        for path in work.iterdir():
            os.chmod(path, 0o644)
        install_folder(work, out_dir)
        return manifest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _onnx():  # type: ignore[no-untyped-def]
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError as exc:
        raise ModelUnavailable(
            f"Building a learned version needs the onnx package ({exc}); install it with `pip install -e '.[torch]'`."
        ) from None
    return onnx, helper, numpy_helper
