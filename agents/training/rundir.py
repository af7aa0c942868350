"""Run directories: the metrics file, checkpoints, and the checks that a directory fits a config."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from agents.training.config import TrainConfig
from agents.util.csvfile import csv_text, read_csv

METRIC_FIELDS = (
    "generation", "best", "mean", "std", "min", "best_so_far", "nonfinite", "env_steps",
    "lr", "sigma", "eval_seconds", "env_steps_per_second", "replaced_workers",
)
#: Columns that measure wall-clock time or incidents, so they differ between otherwise identical runs.
WALL_CLOCK_FIELDS = ("eval_seconds", "env_steps_per_second", "replaced_workers")

class RunDirError(ValueError):
    """A run directory that cannot be used as asked (exists, other config, corrupt checkpoint)."""


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """The text of ``metrics.csv``: a header of :data:`METRIC_FIELDS`, one row per generation."""
    return csv_text(rows, METRIC_FIELDS)


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` as floats."""
    return [{k: float(v) for k, v in row.items()} for row in read_csv(Path(run_dir) / "metrics.csv")]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint, turning any failure into a RunDirError that names the file."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # corrupt, truncated, not a torch file
        raise RunDirError(f"checkpoint {path} is corrupt or unreadable ({type(exc).__name__}: {exc}); "
                          "start a new run in another --out directory") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != 1:
        raise RunDirError(f"checkpoint {path} is not a hebb-gym checkpoint (format 1)")
    return ckpt


def prepare_run_dir(out: Path, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """Check the run directory against the config; returns the checkpoint to resume from, if any."""
    cfg_path = out / "config.json"
    if not cfg_path.exists():
        if resume and out.exists() and any(out.iterdir()):
            raise RunDirError(f"--resume: {out} has no config.json; it is not a hebb-gym run directory")
        out.mkdir(parents=True, exist_ok=True)
        return None
    try:
        saved = TrainConfig.from_json(json.loads(cfg_path.read_text())["train"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{cfg_path} is unreadable ({exc}); choose another --out directory") from exc
    if not resume:
        raise RunDirError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if saved.identity() != config.identity():
        diff = {k: (v, config.identity()[k]) for k, v in saved.identity().items() if config.identity()[k] != v}
        raise RunDirError(f"--resume: {out} was made with other settings (saved, given): {diff}")
    ckpt_path = out / "checkpoint.pt"
    return load_checkpoint(ckpt_path) if ckpt_path.exists() else None


