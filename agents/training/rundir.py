"""Run directories: the metrics file, checkpoints, and the checks that a directory fits a config."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
from pathlib import Path
from typing import Any

from agents.training.config import TrainConfig
from agents.util.csvfile import csv_text, read_csv
from agents.util.statefile import StateFileError, load_state, save_state

METRIC_FIELDS = (
    "generation", "best", "mean", "std", "min", "best_so_far", "nonfinite", "env_steps",
    "lr", "sigma", "centre_mean", "centre_std", "centre_min", "best_centre", "eval_seconds", "env_steps_per_second",
    "replaced_workers", "centre_seconds", "horizon",
)
#: Columns that measure wall-clock time or incidents, so they differ between otherwise identical runs.
WALL_CLOCK_FIELDS = ("eval_seconds", "env_steps_per_second", "replaced_workers", "centre_seconds")

class RunDirError(ValueError):
    """A run directory that cannot be used as asked (exists, other config, corrupt checkpoint)."""


def metrics_csv(rows: list[dict[str, Any]]) -> str:
    """The text of ``metrics.csv``: a header of :data:`METRIC_FIELDS`, one row per generation."""
    return csv_text(rows, METRIC_FIELDS)


def trainer_seconds(row: dict[str, float]) -> float:
    """The trainer's seconds for one ``metrics.csv`` row: the generation's evaluation plus its centre evaluation,
    if it had one (a row of :func:`read_metrics`, NaN where no centre was evaluated)."""
    centre = row.get("centre_seconds", math.nan)
    return row["eval_seconds"] + (centre if math.isfinite(centre) else 0.0)


def centre_file(generation: int | str) -> str:
    """The name of the centre kept (``keep_centres``) after ``generation`` (its ``metrics.csv`` row)."""
    return f"centre-{generation:06d}.pt" if isinstance(generation, int) else f"centre-{generation}.pt"


def rows_behind(policy_file: str, rows: list[dict[str, float]]) -> int:
    """How many of a run's ``metrics.csv`` rows (:func:`read_metrics`) stand behind its policy file ``policy_file``:
    the generations up to the one that saved it. A kept centre (:func:`centre_file`): up to its generation;
    ``best.pt``: up to the last row that set a new ``best_centre`` record (without centre evaluations: a new
    ``best_so_far``, the best single evaluation); ``last.pt`` and any other file: all of them."""
    if Path(policy_file).match(centre_file("*")):
        at = [i for i, r in enumerate(rows) if centre_file(int(r["generation"])) == policy_file]
        if not at:
            raise ValueError(f"policy_file={policy_file!r}: no generation of the run's metrics.csv kept it "
                             f"(generations 0-{len(rows) - 1})")
        return at[0] + 1
    if policy_file == "best.pt" and rows:
        key = "best_centre" if any(math.isfinite(r["best_centre"]) for r in rows) else "best_so_far"
        changed = [i for i, r in enumerate(rows) if math.isfinite(r[key])
                   and (i == 0 or not r[key] == rows[i - 1][key])]
        return changed[-1] + 1 if changed else len(rows)
    return len(rows)


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of a run's ``metrics.csv`` as floats (NaN where a cell is empty: no centre evaluation there)."""
    return [{k: float(v) if v != "" else math.nan for k, v in row.items()}
            for row in read_csv(Path(run_dir) / "metrics.csv")]


#: The kind written into checkpoint files (see :mod:`agents.util.statefile`).
CHECKPOINT_KIND = "hebb-gym-checkpoint"
#: Files a run writes into its directory (besides ``tensorboard/`` and the lock).
RUN_FILES = ("config.json", "metrics.csv", "checkpoint.pt", "best.pt", "last.pt", "learning_curve.png", "train.log")
LOCK_FILE = ".lock"


def save_checkpoint(path: Path, ckpt: dict[str, Any]) -> None:
    """Write a checkpoint atomically: arrays and plain values only, with a checksum."""
    save_state(path, ckpt, CHECKPOINT_KIND)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint without executing anything, turning any failure into a RunDirError naming the file."""
    try:
        ckpt = load_state(path, CHECKPOINT_KIND)
    except StateFileError as exc:
        raise RunDirError(f"checkpoint {exc}; it is corrupt or not a hebb-gym checkpoint, and was not loaded. "
                          "Start a new run in another --out directory") from exc
    if not isinstance(ckpt, dict) or not {"generation", "strategy", "metrics", "best"} <= set(ckpt):
        raise RunDirError(f"checkpoint {path} lacks the fields of a hebb-gym checkpoint; it was not used")
    return ckpt


def _metric_rows(out: Path) -> int:
    try:
        return len(read_csv(out / "metrics.csv"))
    except (OSError, ValueError):
        return 0


def check_run_dir(out: Path, config: TrainConfig, resume: bool) -> dict[str, Any] | None:
    """Check ``out`` against the config without writing anything; returns the checkpoint to resume from, if any.

    Refused: a new run into a directory that holds anything; ``resume`` of a missing directory, of one made
    with other settings, or of one whose metrics or policies would be overwritten for want of a checkpoint.
    """
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out} is a file, not a directory")
    present = sorted(p.name for p in out.iterdir() if p.name != LOCK_FILE) if out.is_dir() else []
    cfg_path = out / "config.json"
    if not resume:
        if cfg_path.exists():
            raise RunDirError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
        if present:
            raise RunDirError(f"--out {out} is not empty (it holds {', '.join(present[:5])}"
                              f"{', ...' if len(present) > 5 else ''}); choose a new or empty directory")
        return None
    if not out.is_dir():
        raise RunDirError(f"--resume: {out} does not exist, so there is nothing to resume; check --out, "
                          "or leave out --resume to start a new run there")
    if not cfg_path.exists():
        raise RunDirError(f"--resume: {out} has no config.json; it is not a hebb-gym run directory")
    try:
        saved = TrainConfig.from_json(json.loads(cfg_path.read_text())["train"])
    except (ValueError, KeyError, TypeError) as exc:
        raise RunDirError(f"{cfg_path} is unreadable ({exc}); choose another --out directory") from exc
    if saved.identity() != config.identity():
        diff = {k: (v, config.identity()[k]) for k, v in saved.identity().items() if config.identity()[k] != v}
        raise RunDirError(f"--resume: {out} was made with other settings (saved, given): {diff}")
    ckpt_path = out / "checkpoint.pt"
    if ckpt_path.exists():
        return load_checkpoint(ckpt_path)
    rows = _metric_rows(out)
    kept = [n for n in ("best.pt", "last.pt") if (out / n).exists()]
    if rows or kept:
        what = ", ".join(([f"metrics.csv with {rows} generation(s)"] if rows else []) + kept)
        raise RunDirError(f"--resume: {out} has no checkpoint.pt but holds {what}; resuming would start again at "
                          "generation 0 and overwrite them. Restore checkpoint.pt, or move the directory away and "
                          "start a new run")
    return None


class RunLock:
    """An advisory lock on a run directory: ``.lock`` holds the trainer's pid and host while it runs.

    A second trainer is refused; a lock left by a process that no longer runs (on this host) is stale and
    taken over.
    """

    def __init__(self, out: Path) -> None:
        self.path = out / LOCK_FILE
        self.held = False

    def acquire(self) -> "RunLock":
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        # the lock appears whole or not at all: written to a temp file, then linked into place (fails if taken)
        tmp = self.path.with_name(f"{LOCK_FILE}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(me))
        try:
            for _ in range(2):
                try:
                    os.link(tmp, self.path)
                except FileExistsError:
                    holder = self._holder()
                    if holder is None or not self._stale(holder):
                        raise RunDirError(
                            f"{self.path.parent} is in use by another trainer (pid "
                            f"{(holder or {}).get('pid', '?')} on {(holder or {}).get('host', '?')} since "
                            f"{(holder or {}).get('since', '?')}); wait for it to finish, or delete {self.path} if "
                            "that trainer is gone") from None
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(self.path)  # stale: take it over
                    continue
                self.held = True
                return self
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise RunDirError(f"could not take the lock {self.path}; another trainer is starting there")

    def _holder(self) -> dict[str, Any] | None:
        try:
            holder = json.loads(self.path.read_text())
            return holder if isinstance(holder, dict) else None
        except (OSError, ValueError):
            return None

    @staticmethod
    def _stale(holder: dict[str, Any]) -> bool:
        if holder.get("host") != socket.gethostname():
            return False  # another machine's process cannot be checked from here
        try:
            os.kill(int(holder["pid"]), 0)
        except ProcessLookupError:
            return True
        except (PermissionError, KeyError, ValueError, TypeError):
            return False
        return False

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
