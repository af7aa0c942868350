"""One source per setting: flags generated from the configs, the env-id parser, rollout env kwargs, LOO templates."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field, fields

import pytest

from agents.cli import build_parser
from agents.cli.options import add_settings, flag_of, setting_values
from agents.es import Schedule
from agents.evaluation.envs import parse_env_ids, rollout_env_kwargs
from agents.evaluation.fitness import FitnessConfig
from agents.experiments.loo import (LOOConfig, es_template_settings, parse_agent_spec, ppo_template_settings,
                                    spec_settings)
from agents.experiments.ppo import PPO_OVERRIDABLE, PPOConfig
from agents.policies import AGENTS
from agents.training import TrainConfig
from agents.util.settings import settings_of

ANT, ANT2 = "HebbAnt-Default-v0", "HebbAnt-LongRearLegs-v0"
CAR = "HebbCarRacing-Default-v0"


def subparser(command: str) -> argparse.ArgumentParser:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[command]


def defaults_via_cli(parser: argparse.ArgumentParser, settings, prefix: str = "", argv=()) -> dict:
    return setting_values(parser.parse_args(list(argv)), settings, prefix)


# ------------------------------------------------------------------------------------------ generated flags


def test_every_train_config_field_is_a_train_flag_with_its_default():
    parser = subparser("train")
    settings = settings_of(TrainConfig)
    assert list(settings) == [f.name for f in fields(TrainConfig)]
    for s in settings.values():
        assert flag_of(s) in parser._option_string_actions, s.name
        assert s.help, f"TrainConfig.{s.name} has no help"
    # train's flags leave no value unless given (a preset or a resumed run's config stands for the others) ...
    assert defaults_via_cli(parser, settings.values(), argv=["--out", "x"]) == {}
    assert TrainConfig(**defaults_via_cli(parser, settings.values())) == TrainConfig()
    # ... and the same flags without that switch default to the fields' defaults
    plain = argparse.ArgumentParser()
    add_settings(plain, settings.values())
    assert defaults_via_cli(plain, settings.values()) == {f.name: getattr(TrainConfig(), f.name) for f in fields(TrainConfig)}


def test_train_flags_build_the_config():
    parser = subparser("train")
    argv = ["--env", f"{ANT}, {ANT2}", "--agent", "static", "--rho", "N", "--popsize", "6", "--lr", "0.05",
            "--optimizer", "adam", "--early-stop", "off", "--env-termination", "--physics", "bullet",
            "--address", "10.0.0.1:6379", "--tensorboard", "--workers", "3"]
    got = TrainConfig(**defaults_via_cli(parser, settings_of(TrainConfig).values(), argv=argv))
    assert got == TrainConfig(env=(ANT, ANT2), agent="static", rho="N", popsize=6, lr=0.05, optimizer="adam",
                              early_stop="off", env_termination=True, env_kwargs={"backend": "bullet"},
                              address="10.0.0.1:6379", tensorboard=True, workers=3)
    for bad in (["--agent", "transformer"], ["--rho", "0"], ["--popsize", "many"], ["--physics", "ode"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_schedule_settings_are_declared_once():
    schedule = {f.name: f for f in fields(Schedule)}
    for f in fields(TrainConfig):
        if f.name in schedule:
            assert f.default == schedule[f.name].default and f.metadata["help"] == schedule[f.name].metadata["help"]
    config = TrainConfig(lr=0.3, lr_decay=0.9, sigma=0.2, l2=0.0, optimizer="adam")
    assert config.schedule() == Schedule(lr=0.3, lr_decay=0.9, sigma=0.2, l2=0.0, optimizer="adam")
    with pytest.raises(ValueError, match="lr_decay"):
        TrainConfig(lr_decay=1.5)


@dataclass
class Toy:
    """Every kind of field the generator handles (what new TrainConfig fields will be)."""

    switch: bool = field(default=False, metadata={"help": "a switch"})
    on: bool = field(default=True, metadata={"help": "a feature"})
    count: int = field(default=3, metadata={"help": "a count"})
    rate: float = field(default=0.5, metadata={"help": "a rate"})
    name: str = field(default="a", metadata={"help": "a name", "choices": ("a", "b")})
    path: str | None = field(default=None, metadata={"help": "a path"})
    limit: int | None = field(default=None, metadata={"help": "a limit"})
    maybe: bool | None = field(default=None, metadata={"help": "a tri-state"})
    ids: tuple[str, ...] = field(default=("x",), metadata={"help": "ids"})
    extra: dict = field(default_factory=dict, metadata={"help": "kwargs"})
    preset: str = field(default="", metadata={"help": "spelled otherwise", "flag": "use_preset"})


def test_the_generator_handles_every_kind_of_field():
    parser = argparse.ArgumentParser()
    settings = add_settings(parser, settings_of(Toy).values())
    assert [a.option_strings[0] for a in parser._actions[1:]] == [
        "--switch", "--on", "--count", "--rate", "--name", "--path", "--limit", "--maybe", "--ids", "--extra",
        "--use-preset"]
    assert Toy(**setting_values(parser.parse_args([]), settings)) == Toy()
    # every bool has both spellings, so either overrides a preset's value
    assert [a.option_strings for a in parser._actions[1:3]] == [["--switch", "--no-switch"], ["--on", "--no-on"]]
    assert Toy(**setting_values(parser.parse_args(["--no-switch", "--on"]), settings)) == Toy()
    argv = ["--switch", "--no-on", "--count", "7", "--rate", "1e-3", "--name", "b", "--path", "/p", "--limit", "4",
            "--maybe", "false", "--ids", "u,v", "--extra", '{"k": 1}', "--use-preset", "fast"]
    assert Toy(**setting_values(parser.parse_args(argv), settings)) == Toy(
        True, False, 7, 1e-3, "b", "/p", 4, False, ("u", "v"), {"k": 1}, "fast")
    for bad in (["--name", "c"], ["--count", "1.5"], ["--extra", "[1]"], ["--maybe", "perhaps"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_ppo_and_loo_flags_come_from_the_configs():
    ppo = subparser("ppo")
    for s in settings_of(PPOConfig).values():
        if s.name not in ("env", "overrides"):
            assert flag_of(s) in ppo._option_string_actions
    for key in PPO_OVERRIDABLE:
        assert "--" + key.replace("_", "-") in ppo._option_string_actions
    loo = subparser("loo")
    argv = ["--task", "ant"]
    train = defaults_via_cli(loo, es_template_settings().values(), argv=argv)
    assert TrainConfig(**train) == TrainConfig()
    assert PPOConfig(**defaults_via_cli(loo, ppo_template_settings().values(), "ppo_", argv)) == PPOConfig()
    assert set(ppo_template_settings()) == {"timesteps", "max_minutes", "n_envs"}
    assert "--ppo-timesteps" in loo._option_string_actions and "--eval-seed" in loo._option_string_actions


# ------------------------------------------------------------------------------------------ env ids


def test_parse_env_ids():
    assert parse_env_ids(f"{ANT},{ANT2}") == (ANT, ANT2)
    assert parse_env_ids(f" {ANT} , ,{ANT2},") == (ANT, ANT2)
    assert parse_env_ids([ANT, ANT]) == (ANT, ANT)  # repeats weigh a variant twice; kept
    assert parse_env_ids(f"{ANT},{CAR}", one_task=False) == (ANT, CAR)
    assert parse_env_ids("Pendulum-v1", one_task=False) == ("Pendulum-v1",)
    with pytest.raises(ValueError, match="--env is empty"):
        parse_env_ids(" , ", name="--env")
    with pytest.raises(ValueError, match="env='NoSuchEnv-v0' is not a registered Gymnasium id"):
        parse_env_ids(f"{ANT},NoSuchEnv-v0")
    with pytest.raises(ValueError, match="mixes tasks"):
        parse_env_ids((ANT, CAR))
    with pytest.raises(TypeError, match="env="):
        parse_env_ids([ANT, 3])
    for make in (lambda e: TrainConfig(env=e), lambda e: PPOConfig(env=e), lambda e: FitnessConfig(e)):
        with pytest.raises(ValueError, match="mixes tasks"):
            make((ANT, CAR))
        with pytest.raises(ValueError, match="is empty"):
            make(())


def test_rollout_env_kwargs_decides_the_quadruped_termination():
    assert rollout_env_kwargs([ANT]) == {"terminate_when_unhealthy": False}
    assert rollout_env_kwargs([ANT], {"backend": "bullet"}, env_termination=True) == {"backend": "bullet"}
    assert rollout_env_kwargs([ANT], {"terminate_when_unhealthy": True}) == {"terminate_when_unhealthy": True}
    assert rollout_env_kwargs([CAR]) == {}
    assert rollout_env_kwargs(["Pendulum-v1"]) == {}
    assert TrainConfig(env=(ANT,), env_kwargs={"backend": "bullet"}).rollout_env_kwargs() == {
        "backend": "bullet", "terminate_when_unhealthy": False}


# ------------------------------------------------------------------------------------------ leave-one-out


def test_loo_cells_are_the_templates_plus_the_spec():
    config = LOOConfig(train=TrainConfig(popsize=8, generations=3, lr=0.1, env_kwargs={"backend": "bullet"}),
                       ppo=PPOConfig(timesteps=100, overrides={"gamma": 0.9}))
    es = config.es_config(parse_agent_spec("hebbian:rho=16:sigma=0.3"), (ANT2,), seed=4)
    assert es == TrainConfig(env=(ANT2,), agent="hebbian", seed=4, popsize=8, generations=3, lr=0.1, rho=16,
                             sigma=0.3, env_kwargs={"backend": "bullet"})
    ppo = config.ppo_config(parse_agent_spec("ppo:n_envs=4:learning_rate=1e-4"), (ANT2,), seed=4)
    assert ppo == PPOConfig(env=(ANT2,), seed=4, timesteps=100, n_envs=4, max_steps=1000,
                            overrides={"gamma": 0.9, "learning_rate": 1e-4},
                            env_kwargs={"backend": "bullet", "terminate_when_unhealthy": False})
    # Every agent meets the same envs: --env-termination keeps the termination for ES training too.
    kept = LOOConfig(train=TrainConfig(env_termination=True))
    assert kept.es_config(parse_agent_spec("static"), (ANT2,), 0).rollout_env_kwargs() == {}
    assert kept.env_kwargs((ANT2,)) == {} and LOOConfig().env_kwargs((ANT2,)) == {"terminate_when_unhealthy": False}
    identity = config.identity()
    assert identity["generations"] == 3 and identity["ppo_timesteps"] == 100 and identity["eval_episodes"] == 5
    assert not {"env", "agent", "seed", "backend", "workers", "address", "tensorboard"} & set(identity)


def test_agent_spec_options_come_from_the_configs():
    hebbian, static, ppo = spec_settings("hebbian"), spec_settings("static"), spec_settings("ppo")
    assert {"rule", "rho", "init", "lr", "sigma", "optimizer", "l2", "popsize"} <= set(hebbian)
    assert not {"rule", "rho", "init"} & set(static) and "lr" in static
    assert not {"env", "agent", "seed", "max_steps", "env_kwargs", "backend"} & set(hebbian)
    assert set(ppo) == set(PPO_OVERRIDABLE) | {"timesteps", "max_minutes", "n_envs"}
    assert parse_agent_spec("hebbian:rho=N:early_stop=off").options == (("early_stop", "off"), ("rho", "N"))
    assert parse_agent_spec("ppo:use_sde=false:n_envs=8").options == (("n_envs", 8), ("use_sde", False))
    for kind in AGENTS:
        assert parse_agent_spec(kind).kind == kind  # the kinds are the policy registry's, plus ppo
