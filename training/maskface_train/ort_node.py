"""Runs ONNX models with onnxruntime-node (CPU) from Python, through training/scripts/ort_run.cjs.

Debian has no Python binding for ONNX Runtime, and onnxruntime-node cannot share a process with
another ONNX Runtime, so models run in a node subprocess. onnxruntime-node is found (in this order)
in the repository's node_modules, on NODE_PATH, in .cache/test-peers (where
`node scripts/fetch-test-peers.mjs` puts it), or in the node_modules of the main checkout when this
is a git worktree (worktrees have no node_modules of their own).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .import_onnx import REPO_ROOT

RUNNER = REPO_ROOT / "training" / "scripts" / "ort_run.cjs"


class NodeRuntimeMissing(RuntimeError):
    """node or onnxruntime-node is not available; the message says what is missing."""


def _resolves(node: str, env: dict[str, str]) -> bool:
    probe = subprocess.run([node, "-e", "require.resolve('onnxruntime-node')"], cwd=RUNNER.parent,
                           env=env, capture_output=True, text=True)
    return probe.returncode == 0


def _main_checkout_modules() -> Path | None:
    try:
        common = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--git-common-dir"],
                                capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    modules = (REPO_ROOT / common).resolve().parent / "node_modules"
    return modules if (modules / "onnxruntime-node").is_dir() else None


def node_environment() -> tuple[str, dict[str, str]]:
    """(node executable, environment in which onnxruntime-node resolves), or NodeRuntimeMissing."""
    node = shutil.which("node")
    if node is None:
        raise NodeRuntimeMissing("node is not on PATH")
    env = dict(os.environ)
    if _resolves(node, env):
        return node, env
    # Where the parity tests fetch it (scripts/fetch-test-peers.mjs), then the main checkout's.
    for modules in (REPO_ROOT / ".cache" / "test-peers" / "node_modules", _main_checkout_modules()):
        if modules is None or not (modules / "onnxruntime-node").is_dir():
            continue
        trial = dict(env, NODE_PATH=os.pathsep.join(p for p in [str(modules), env.get("NODE_PATH", "")] if p))
        if _resolves(node, trial):
            return node, trial
    raise NodeRuntimeMissing(f"onnxruntime-node does not resolve from {REPO_ROOT} (nor NODE_PATH, .cache/test-peers, "
                             "nor the main checkout's node_modules): run `node scripts/fetch-test-peers.mjs` "
                             "or set NODE_PATH")


def run_model(model: str | os.PathLike, inputs: np.ndarray, *, optimisation: str = "all",
              timeout: float = 900) -> tuple[dict[str, np.ndarray], dict]:
    """Outputs of `model` for each item of `inputs` (N, ...) float32, run one item at a time:
    ({output name: (N, ...) float32}, runner info: ortVersion, ms)."""
    node, env = node_environment()
    inputs = np.ascontiguousarray(inputs, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="ort-run-") as work:
        input_path, out_dir = Path(work) / "input.f32", Path(work) / "out"
        inputs.tofile(input_path)
        shape = ",".join(str(d) for d in (1, *inputs.shape[1:]))
        result = subprocess.run([node, str(RUNNER), str(model), str(input_path), shape, str(out_dir), optimisation],
                                env=env, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise RuntimeError(f"onnxruntime-node failed on {model}: {result.stderr.strip()}")
        info = json.loads(result.stdout.strip().splitlines()[-1])
        outputs = {name: np.fromfile(out_dir / f"{name.replace('/', '_')}.f32", dtype=np.float32)
                   .reshape(len(inputs), -1) for name in info["outputs"]}
    return outputs, info
