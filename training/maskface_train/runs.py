"""What every training loop shares: seeding, checkpoints that resume exactly, progress and a loss log.

A run lives in one folder:
  config.json       the run's configuration, written once; a resumed run must match it
  checkpoint.pt     model, optimiser, scheduler, step, RNG states (written atomically)
  losses.jsonl      one JSON object per logged step (step, losses, learning rate, seconds)
"""
from __future__ import annotations

import json
import os
import random
import sys
import time
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and PyTorch (CPU and, where present, CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class RunDir:
    """A run folder: config, checkpoint and loss log (see the module docstring)."""

    def __init__(self, path: str | os.PathLike, config: Any) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.config = asdict(config) if is_dataclass(config) else dict(config)
        config_path = self.path / "config.json"
        if config_path.exists():
            previous = json.loads(config_path.read_text())
            # Options added after the run began count as their defaults, so older runs resume.
            for f in fields(config) if is_dataclass(config) else ():
                if f.name not in previous and f.default is not MISSING:
                    previous[f.name] = json.loads(json.dumps(f.default))
            if previous != json.loads(json.dumps(self.config)):
                changed = sorted(k for k in set(previous) | set(self.config)
                                 if previous.get(k) != json.loads(json.dumps(self.config)).get(k))
                raise ValueError(f"{self.path} holds a run with another configuration (differs in: "
                                 f"{', '.join(changed)}); use a new --out folder")
        else:
            config_path.write_text(json.dumps(self.config, indent=2) + "\n")

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def save(self, step: int, **state: Any) -> None:
        """Writes the checkpoint atomically (a crash leaves the previous one intact)."""
        payload = {"step": step, "rng": _rng_state(), **{k: _state_of(v) for k, v in state.items()}}
        tmp = self.checkpoint_path.with_suffix(".tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.checkpoint_path)

    def resume(self, **state: Any) -> int:
        """Loads the checkpoint into the given objects (by keyword) and returns its step; 0 if none."""
        if not self.checkpoint_path.exists():
            return 0
        # weights_only=False: our own file, and its RNG states (Python tuples, NumPy arrays) are
        # refused by the weights_only=True that torch.load defaults to from PyTorch 2.6 on.
        payload = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
        for key, target in state.items():
            if key not in payload:
                raise KeyError(f"{self.checkpoint_path} has no '{key}'")
            target.load_state_dict(payload[key])
        _set_rng_state(payload["rng"])
        step = int(payload["step"])
        # Steps logged after the checkpoint will run again: drop them so the log has each once.
        log = self.path / "losses.jsonl"
        if log.exists():
            kept = [line for line in log.read_text().splitlines() if json.loads(line)["step"] <= step]
            log.write_text("".join(line + "\n" for line in kept))
        return step

    def log(self, step: int, **values: float) -> None:
        with open(self.path / "losses.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **{k: round(float(v), 6) for k, v in values.items()}}) + "\n")

    def read_log(self) -> list[dict]:
        path = self.path / "losses.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _state_of(value: Any) -> Any:
    return value.state_dict() if hasattr(value, "state_dict") else value


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class Progress:
    """A one-line progress bar on stderr (a plain line every `every` steps when not a terminal)."""

    def __init__(self, total: int, start: int = 0, label: str = "train", every: int = 50) -> None:
        self.total, self.step, self.label, self.every = total, start, label, every
        self.started = time.monotonic()
        self.first = start
        self.tty = sys.stderr.isatty()

    def update(self, step: int, **values: float) -> None:
        self.step = step
        done = step - self.first
        elapsed = time.monotonic() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        text = " ".join(f"{k} {v:.4f}" for k, v in values.items())
        line = f"{self.label} {step}/{self.total} {text} {rate:.2f} it/s eta {eta:.0f} s"
        if self.tty:
            width = 24
            filled = int(width * step / max(self.total, 1))
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {line}\x1b[K")
            if step >= self.total:
                sys.stderr.write("\n")
        elif step % self.every == 0 or step >= self.total:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()
