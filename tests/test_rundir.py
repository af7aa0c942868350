"""Run directories that never lose or execute anything: safe checkpoints, refusing resumes, the lock, clean starts."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time

import pytest
import torch

from agents.training import RunDirError, TrainConfig, read_metrics, train
from agents.training.rundir import LOCK_FILE, RunLock, load_checkpoint

ANT = "HebbAnt-Default-v0"


def tiny(**kw) -> TrainConfig:
    base = dict(env=(ANT,), popsize=4, generations=2, max_steps=15, backend="serial", seed=1)
    base.update(kw)
    return TrainConfig(**base)


class _Payload:
    """Pickling this runs ``open(marker, 'w')`` on load: what a crafted checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("how", ["torch.save", "raw pickle"])
def test_a_crafted_checkpoint_runs_no_code(tmp_path, tmp_path_factory, how):
    marker = tmp_path_factory.mktemp("outside") / "pwned"  # outside the run directory and the repo
    run = tmp_path / "run"
    train(tiny(), run, progress=False)
    evil = {"format": "hebb-gym-checkpoint", "state": _Payload(str(marker)), "checksum": ""}
    with open(run / "checkpoint.pt", "wb") as f:
        torch.save(evil, f) if how == "torch.save" else pickle.dump(evil, f)
    with pytest.raises(RunDirError, match="not loaded"):
        train(tiny(generations=3), run, resume=True, progress=False)
    assert not marker.exists()


def test_a_bit_flip_in_the_checkpoint_is_refused(tmp_path):
    run = tmp_path / "run"
    train(tiny(), run, progress=False)
    data = bytearray((run / "checkpoint.pt").read_bytes())
    ckpt = load_checkpoint(run / "checkpoint.pt")
    mean = ckpt["strategy"]["mean"].tobytes()
    at = bytes(data).find(mean[:16])  # inside the array of the search mean
    assert at > 0
    data[at + 3] ^= 0x10
    (run / "checkpoint.pt").write_bytes(bytes(data))
    with pytest.raises(RunDirError, match="checksum"):
        train(tiny(generations=3), run, resume=True, progress=False)


def test_resume_never_shrinks_a_run(tmp_path):
    run = tmp_path / "run"
    train(tiny(), run, progress=False)
    metrics, best = (run / "metrics.csv").read_bytes(), (run / "best.pt").read_bytes()
    (run / "checkpoint.pt").unlink()
    with pytest.raises(RunDirError, match="no checkpoint.pt but holds metrics.csv with 2 generation"):
        train(tiny(generations=3), run, resume=True, progress=False)
    assert (run / "metrics.csv").read_bytes() == metrics and (run / "best.pt").read_bytes() == best
    with pytest.raises(RunDirError, match="does not exist"):
        train(tiny(), tmp_path / "typo", resume=True, progress=False)
    assert not (tmp_path / "typo").exists()


def test_a_new_run_refuses_a_directory_that_holds_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunDirError, match="not empty"):
        train(tiny(), tmp_path, progress=False)
    assert sorted(os.listdir(tmp_path)) == ["notes.txt"]


@pytest.mark.parametrize("bad", [{"max_steps": 0}, {"episodes": 0}, {"env": (ANT, "HebbCarRacing-Default-v0")}])
def test_a_failed_start_leaves_out_as_it_was(tmp_path, bad):
    run = tmp_path / "run"
    with pytest.raises(ValueError):
        train(tiny(**bad), run, progress=False)
    assert not run.exists()
    result = train(tiny(), run, progress=False)  # the corrected command just works
    assert len(read_metrics(result.run_dir)) == 2


def test_a_failure_in_the_first_generation_leaves_out_as_it_was(tmp_path, monkeypatch):
    import agents.training.loop as loop

    def out_of_memory(*args, **kwargs):
        raise MemoryError("simulated")

    run = tmp_path / "run"
    run.mkdir()
    monkeypatch.setattr(loop, "make_backend", out_of_memory)
    with pytest.raises(MemoryError):
        train(tiny(), run, progress=False)
    assert os.listdir(run) == []
    monkeypatch.undo()
    train(tiny(), run, progress=False)
    assert len(read_metrics(run)) == 2


def test_a_second_trainer_is_refused_and_a_stale_lock_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    lock = RunLock(run).acquire()
    try:
        with pytest.raises(RunDirError, match=f"in use by another trainer \\(pid {os.getpid()}"):
            train(tiny(), run, progress=False)
    finally:
        lock.release()
    assert os.listdir(run) == []
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / LOCK_FILE).write_text('{"pid": %d, "host": "%s", "since": "then"}' % (dead.pid, os.uname().nodename))
    train(tiny(), run, progress=False)
    assert not (run / LOCK_FILE).exists()


def test_unwritable_out_is_one_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(RunDirError, match="cannot write into --out"):
        train(tiny(), tmp_path / "file" / "run", progress=False)  # a parent that is a file: no directory there
    if os.geteuid() != 0:  # root may write into read-only directories
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(RunDirError, match="cannot write"):
            train(tiny(), ro / "run", progress=False)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_after_the_current_write_and_resume_continues(tmp_path, sig):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "agents.cli", "train", "--env", ANT, "--popsize", "4", "--generations", "500",
           "--max-steps", "15", "--backend", "process", "--workers", "2", "--seed", "1", "--quiet", "--out", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(read_metrics(run) if (run / "metrics.csv").exists() else []) < 2:
        time.sleep(0.1)
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else proc.send_signal(sig)  # Ctrl-C reaches the group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert "--resume" in err
    assert not (run / LOCK_FILE).exists()
    done = len(read_metrics(run))
    assert 2 <= done < 500
    train(TrainConfig(env=(ANT,), popsize=4, generations=done + 1, max_steps=15, backend="serial", seed=1),
          run, resume=True, progress=False)
    assert len(read_metrics(run)) == done + 1


def test_a_population_too_big_for_this_machine_is_refused_up_front(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(ValueError, match=r"needs about .* GiB .* this machine has"):
        train(tiny(popsize=20_000_000, rho=16), run, progress=False)
    assert not run.exists()


def test_workers_stream_their_slice_in_chunks_with_the_same_fitnesses(monkeypatch):
    import numpy as np

    import agents.evaluation.backends as backends
    from agents.es.params import strategy_factory
    from agents.training import build_policy

    config = tiny(popsize=10, max_steps=30, obs_norm=True)
    policy = build_policy(config)
    factory = strategy_factory(policy, config)
    init = backends.WorkerInit(policy, factory, factory().state_dict(), config.fitness_config(), True)
    whole = backends.Worker(init).run(None, 0, 10, 5)
    monkeypatch.setattr(backends, "CHUNK", 3)
    chunked = backends.Worker(init).run(None, 0, 10, 5)
    assert np.array_equal(whole.fitness, chunked.fitness) and whole.env_steps == chunked.env_steps
    assert all(np.array_equal(a.m2, b.m2) for a, b in zip(whole.obs_stats, chunked.obs_stats))


def test_nan_is_refused_by_predict_set_flat_and_policy_files(tmp_path):
    import numpy as np

    from agents.policies import HebbianPolicy, load_policy

    policy = HebbianPolicy.from_env(ANT, seed=0)
    obs = np.zeros(policy.observation_space.shape, dtype=np.float64)
    obs[3] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        policy.predict(obs)
    action, state = policy.predict(obs, allow_nonfinite=True)  # the opt-in
    assert not np.isfinite(action).all()
    bad = policy.get_flat()
    bad[7] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        policy.set_flat(bad)
    path = tmp_path / "p.pt"
    policy.save(path)
    data = bytearray(path.read_bytes())
    flat = policy.get_flat().tobytes()
    at = bytes(data).find(flat[:32])
    data[at + 5] ^= 0x40  # one bit of the parameters flipped on disk
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        load_policy(path)


def test_evaluate_prints_its_episodes_before_a_failed_csv_write(tmp_path, capsys):
    from agents.cli import main as cli

    run = tmp_path / "run"
    train(tiny(), run, progress=False)
    (tmp_path / "file").write_text("")
    assert cli(["evaluate", str(run), "--env", ANT, "--episodes", "1", "--max-steps", "10",
                "--csv", str(tmp_path / "file" / "out.csv")]) == 2
    captured = capsys.readouterr()
    assert ANT in captured.out and "error" in captured.err


def test_ppo_pickles_load_only_when_written_here_or_trusted(tmp_path, monkeypatch):
    import shutil

    from agents.experiments.ppo import PPOConfig, load_ppo, train_ppo

    monkeypatch.setenv("HEBB_GYM_HOME", str(tmp_path / "home"))
    out = tmp_path / "ppo"
    train_ppo(PPOConfig(env=("CartPole-v1",), timesteps=64, n_envs=1, overrides={"n_steps": 64, "batch_size": 64}),
              out)
    assert load_ppo(out).model is not None  # written by this machine: its signature checks out
    shared = tmp_path / "shared"
    shutil.copytree(out, shared)
    with open(shared / "model.zip", "ab") as f:
        f.write(b"\0")  # changed after it was written (a zip still loads with trailing bytes)
    with pytest.raises(ValueError, match="did not write.*--trust-pickles"):
        load_ppo(shared)
    monkeypatch.setenv("HEBB_GYM_HOME", str(tmp_path / "other-machine"))
    with pytest.raises(ValueError, match="pickles"):
        load_ppo(out)  # another machine's key: not signed here
    assert load_ppo(out, trust_pickles=True).model is not None
