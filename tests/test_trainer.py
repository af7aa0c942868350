"""The ES trainer end to end: run directories, resume after SIGKILL, backends agree, dead workers replaced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from agents.evaluation.backends import make_backend, split
from agents.policies import load_policy
from agents.es.params import strategy_factory
from agents.training import build_policy
from agents.training import RunDirError, TrainConfig, read_metrics, train
from agents.training.rundir import WALL_CLOCK_FIELDS

ANT = "HebbAnt-Default-v0"
CAR = "HebbCarRacing-Default-v0"


def tiny(**kw) -> TrainConfig:
    base = dict(env=(ANT,), popsize=4, generations=2, max_steps=15, backend="serial", seed=1)
    base.update(kw)
    return TrainConfig(**base)


def _deterministic(rows):
    return [{k: v for k, v in r.items() if k not in WALL_CLOCK_FIELDS} for r in rows]


@pytest.mark.parametrize("agent", ["hebbian", "static", "lstm"])
@pytest.mark.parametrize("env", [ANT, CAR])
def test_two_generation_run_writes_every_file(tmp_path, agent, env):
    max_steps = 15 if env == ANT else 6
    result = train(tiny(env=(env,), agent=agent, max_steps=max_steps), tmp_path / "run", progress=False)
    run = result.run_dir
    for name in ("config.json", "metrics.csv", "checkpoint.pt", "best.pt", "last.pt", "learning_curve.png", "train.log"):
        assert (run / name).is_file(), name
    rows = read_metrics(run)
    assert [r["generation"] for r in rows] == [0, 1]
    assert all(np.isfinite(r["mean"]) and r["env_steps"] > 0 for r in rows)
    assert rows[-1]["best_so_far"] == pytest.approx(max(r["best"] for r in rows))
    assert rows[-1]["best_centre"] == pytest.approx(result.best_fitness)  # best.pt: the best centre evaluated
    assert result.best_fitness == pytest.approx(max(r["centre_mean"] for r in rows))
    for name in ("best.pt", "last.pt"):
        policy = load_policy(run / name)
        assert type(policy).__name__.lower().startswith(agent)


def test_tensorboard_events_hold_the_metrics(tmp_path):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install 'hebb-gym[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    result = train(tiny(tensorboard=True), tmp_path / "run", progress=False)
    events = EventAccumulator(str(result.run_dir / "tensorboard"))
    events.Reload()
    means = [e.value for e in events.Scalars("es/mean")]
    assert means == pytest.approx([r["mean"] for r in read_metrics(result.run_dir)], rel=1e-6)


def test_hebbian_shared_rules_run(tmp_path):
    result = train(tiny(rho=64), tmp_path / "run", progress=False)
    policy = load_policy(result.best_path)
    assert policy.num_params < build_policy(tiny()).num_params


def test_cli_evaluate_reads_a_run(tmp_path):
    train(tiny(), tmp_path / "run", progress=False)
    out = subprocess.run(
        [sys.executable, "-m", "agents.cli", "evaluate", str(tmp_path / "run"), "--env", ANT + ",HebbAnt-LongRearLegs-v0",
         "--episodes", "2", "--max-steps", "20"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "HebbAnt-LongRearLegs-v0" in out.stdout
    csv = (tmp_path / "run" / "evaluation.csv").read_text().splitlines()
    assert csv[0].startswith("env,episodes,return_mean") and len(csv) == 3


def test_bad_input_is_refused_and_nothing_is_overwritten(tmp_path):
    with pytest.raises(ValueError, match="popsize=5"):
        tiny(popsize=5)
    with pytest.raises(ValueError, match="agent='transformer'"):
        tiny(agent="transformer")
    with pytest.raises(ValueError, match="backend='mpi'"):
        tiny(backend="mpi")
    with pytest.raises(ValueError, match="NoSuchEnv"):
        tiny(env=("NoSuchEnv-v0",))
    run = tmp_path / "run"
    train(tiny(), run, progress=False)
    before = (run / "metrics.csv").read_bytes()
    with pytest.raises(RunDirError, match="--resume"):
        train(tiny(), run, progress=False)
    with pytest.raises(RunDirError, match="other settings"):
        train(tiny(sigma=0.3), run, resume=True, progress=False)
    assert (run / "metrics.csv").read_bytes() == before
    (run / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunDirError, match="corrupt"):
        train(tiny(generations=3), run, resume=True, progress=False)


def test_resume_after_sigkill_equals_uninterrupted_run(tmp_path):
    cfg = tiny(generations=5, popsize=6, max_steps=40)
    full = tmp_path / "full"
    train(cfg, full, progress=False)

    cut = tmp_path / "cut"
    code = (
        "from agents.training import TrainConfig, train\n"
        f"train(TrainConfig(**{cfg.to_json()!r}), {str(cut)!r}, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.time() + 240
    while time.time() < deadline:
        if (cut / "metrics.csv").exists() and len(read_metrics(cut)) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(read_metrics(cut)) < 5, "the run finished before it could be killed"
    train(cfg, cut, resume=True, progress=False)
    assert _deterministic(read_metrics(cut)) == _deterministic(read_metrics(full))
    assert load_policy(cut / "last.pt").get_flat().tolist() == load_policy(full / "last.pt").get_flat().tolist()


def _fitnesses(backend: str, workers: int, generations: int = 2, kill_at: int | None = None, **cfg_kw):
    """Fitnesses of successive generations, driven as the trainer drives a backend."""
    cfg = tiny(**{"popsize": 6, "max_steps": 25, **cfg_kw})
    policy = build_policy(cfg)
    factory = strategy_factory(policy, cfg)
    strategy = factory()
    at_start = {"state": strategy.state_dict()}
    be = make_backend(backend, policy, strategy, factory, cfg.fitness_config(), workers=workers,
                      snapshot=lambda: at_start["state"])
    out, tell, replaced = [], None, 0
    try:
        for g in range(generations):
            at_start["state"] = strategy.state_dict()
            strategy.ask()
            if g == kill_at:
                threading.Timer(0.5, os.kill, (be.pids[0], signal.SIGKILL)).start()
            res = be.generation(tell, 1000 + g)
            replaced += res.replaced_workers
            strategy.tell(res.fitness)
            tell = res.fitness
            out.append(res.fitness)
    finally:
        be.close()
    return np.stack(out), replaced


def test_serial_and_process_backends_give_identical_fitnesses():
    serial, _ = _fitnesses("serial", 1)
    np.testing.assert_array_equal(serial, _fitnesses("process", 2)[0])
    np.testing.assert_array_equal(serial, _fitnesses("process", 3)[0])


def test_a_killed_worker_is_replaced_and_its_slice_rerun():
    kw = dict(generations=3, popsize=4, max_steps=1000, early_stop=False,
              env_kwargs={"terminate_when_unhealthy": False})  # long generations: the kill lands mid-way
    expected, _ = _fitnesses("serial", 1, **kw)
    got, replaced = _fitnesses("process", 2, kill_at=1, **kw)
    assert replaced == 1
    np.testing.assert_array_equal(got, expected)


def test_split_covers_the_population():
    assert split(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert split(2, 4) == [(0, 1), (1, 2)]


@pytest.mark.ray
def test_ray_backend_runs_a_generation():
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'hebb-gym[ray]')")
    serial, _ = _fitnesses("serial", 1, generations=2)
    np.testing.assert_array_equal(serial, _fitnesses("ray", 2, generations=2)[0])
