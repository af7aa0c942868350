"""Shared test settings (headless rendering) and the fixtures several test modules use."""

import argparse
import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

ANT = "HebbAnt-Default-v0"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ES run (one generation of four Hebbian networks) on the quadruped."""
    from agents.training import TrainConfig, train

    out = tmp_path_factory.mktemp("run")
    train(TrainConfig(env=(ANT,), popsize=4, generations=1, max_steps=20, backend="serial"), out, progress=False)
    return out


@pytest.fixture(scope="module")
def policy(run_dir: Path):
    """The tiny run's best policy (a HebbianPolicy)."""
    from agents.policies import load_policy

    return load_policy(run_dir / "best.pt")


@pytest.fixture
def probe_cli():
    """``probe_cli(argv)``: parse and run argv with a parser holding only the probe commands (as agents.cli wires them)."""
    from agents.cli.probes import add_probe_commands

    def run(argv: list[str]) -> int:
        parser = argparse.ArgumentParser(prog="hebb-gym")
        sub = parser.add_subparsers(dest="command", required=True)
        add_probe_commands(sub)
        args = parser.parse_args(argv)
        return args.handler(args)

    return run
