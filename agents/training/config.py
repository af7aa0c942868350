"""TrainConfig: every setting of an ES training run, checked on construction and saved as ``config.json``.

Each field is the one declaration of its setting: default, type and help (``field(metadata=...)``, see
:mod:`agents.util.settings`) are what ``hebb-gym train`` and ``hebb-gym loo`` make their flags from and
what leave-one-out agent specs (``hebbian:rho=16``) parse. Metadata ``identity=False`` marks the settings
that say how, where or how long a run is computed, not what it computes (``identity()`` leaves them out).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym

from agents.es import Schedule
from agents.es.mixture import check_mixture_schedule
from agents.es.openai_es import check_top_directions
from agents.evaluation.backends import BACKENDS
from agents.evaluation.envs import (ENV_KWARGS_METADATA, import_env_modules, parse_env_ids, rollout_env_kwargs,
                                   task_of)
from agents.evaluation.fitness import INIT_SEEDS, VARIANT_FITNESSES, FitnessConfig
from agents.evaluation.scores import EARLY_STOP_SYNTAX, FITNESS_SYNTAX, FITNESSES, parse_early_stop
from agents.policies import AGENTS, Policy, policy_class
from agents.policies.hebbian import INITS, RENORMS
from agents.policies.rules import RULES
from agents.training.presets import load_preset
from agents.util.settings import check_choices, settings_of

_SCHEDULE = {f.name: f for f in fields(Schedule)}


def _schedule_field(name: str) -> Any:
    """A TrainConfig field of a :class:`~agents.es.Schedule` setting: the Schedule's default and help."""
    f = _SCHEDULE[name]
    return field(default=f.default, metadata=dict(f.metadata))


def _early_stop_text(text: str) -> str:
    """``--early-stop`` text, checked (any task: the rule is checked against the env when the config is built)."""
    spec = text.strip()
    parse_early_stop(spec, "ant" if spec == "original" else None)
    return spec


def parse_rho(text: str) -> int | str:
    """``--rho`` / ``rho=`` text: an int >= 1 (synapses per rule) or ``N`` (one rule for the whole network)."""
    if text.strip() == "N":
        return "N"
    try:
        rho = int(text)
    except ValueError:
        raise ValueError("an int >= 1, or N") from None
    if rho < 1:
        raise ValueError("an int >= 1, or N")
    return rho


#: What a centre evaluation reports as its score (``centre_score``): the metrics columns ``centre_mean`` /
#: ``centre_min``.
CENTRE_SCORES = ("mean", "min")
#: What a centre episode scores (``centre_fitness``): ``same`` as the training episodes (``fitness``), or a
#: fitness of its own, so a run may train on one score and be judged (best.pt, --stop-centre) by another.
CENTRE_FITNESSES = ("same", *FITNESSES)


@dataclass
class TrainConfig:
    """Every setting of a training run; saved as ``config.json``."""

    env: tuple[str, ...] = field(default=("HebbAnt-Default-v0",), metadata={
        "help": "env id or comma-separated ids: the training variants (fitness is the mean over them)"})
    agent: str = field(default="hebbian", metadata={"help": "the policy trained", "choices": AGENTS})
    rule: str = field(default="ABCD_lr", metadata={
        "help": "Hebbian rule (docs/rules.md)", "choices": tuple(RULES), "agents": ("hebbian",)})
    rho: int | str = field(default=1, metadata={
        "help": "synapses per Hebbian rule: 1 = per-synapse rules, N = one rule; > 1 trains the mixture",
        "parse": parse_rho, "agents": ("hebbian",)})
    init: str = field(default="uniform", metadata={
        "help": "initial plastic weights of every episode", "choices": INITS, "agents": ("hebbian",)})
    renorm: str = field(default="auto", metadata={
        "help": "divide every plastic layer by its max |w| after each update (auto: the car's networks only)",
        "choices": RENORMS, "agents": ("hebbian",)})
    init_std: float = field(default=0.1, metadata={
        "help": "std of the normal draw of the initial parameters (Hebbian coefficients, weights); original code: 1"})
    obs_norm: bool = field(default=False, metadata={
        "help": "normalise vector observations by running statistics of the states the population visited"})
    popsize: int = field(default=200, metadata={"help": "individuals per generation; even (antithetic pairs)"})
    generations: int = field(default=100, metadata={"help": "ES generations", "identity": False})
    sigma: float = _schedule_field("sigma")
    sigma_decay: float = _schedule_field("sigma_decay")
    sigma_floor: float = _schedule_field("sigma_floor")
    lr: float = _schedule_field("lr")
    lr_decay: float = _schedule_field("lr_decay")
    lr_floor: float = _schedule_field("lr_floor")
    optimizer: str = _schedule_field("optimizer")
    l2: float = _schedule_field("l2")
    sigma_adapt: str = _schedule_field("sigma_adapt")
    sigma_lr: float = _schedule_field("sigma_lr")
    sigma_max_change: float = _schedule_field("sigma_max_change")
    top_directions: int = _schedule_field("top_directions")
    episodes: int = field(default=1, metadata={"help": "episodes per variant per individual"})
    init_seeds: str = field(default="individual", metadata={
        "help": "initial plastic weights of an episode drawn per individual, the same for both members of an "
                "antithetic pair, or the same for the whole generation (common random numbers)",
        "choices": INIT_SEEDS})
    max_steps: int = field(default=1000, metadata={"help": "episode horizon"})
    horizon_start: int = field(default=0, metadata={
        "help": "growing horizon: generation g's episodes last min(max_steps, horizon_start + g * horizon_growth) "
                "steps (0: always max_steps)"})
    horizon_growth: int = field(default=0, metadata={
        "help": "growing horizon: steps added per generation (with horizon_start)"})
    early_stop: str = field(default="auto", metadata={
        "help": f"when a hopeless training episode ends: {EARLY_STOP_SYNTAX}", "parse": _early_stop_text})
    fitness: str = field(default="auto", metadata={
        "help": f"what an episode scores: {FITNESS_SYNTAX}", "choices": FITNESSES})
    variant_fitness: str = field(default="mean", metadata={
        "help": "how the update weighs the training variants: mean (of the scores, the original code's), min "
                "(the worst variant's score) or rank (mean of the population ranks per variant, every variant "
                "weighing the same); may be changed on --resume", "choices": VARIANT_FITNESSES, "identity": False})
    env_termination: bool = field(default=False, metadata={
        "help": "keep the quadruped's own unhealthy termination during training (off by default)"})
    backend: str = field(default="process", metadata={
        "help": "where individuals are evaluated", "choices": BACKENDS, "identity": False})
    workers: int = field(default=0, metadata={
        "help": "worker processes or Ray actors (0: one per core)", "identity": False})
    address: str | None = field(default=None, metadata={
        "help": "Ray cluster address to join (ray backend)", "identity": False})
    seed: int = field(default=0, metadata={"help": "everything random in the run derives from it"})
    init_policy: str | None = field(default=None, metadata={
        "help": "start the search centre from a saved policy (FILE.pt or pretrained:NAME) of the same agent, "
                "options and spaces instead of from random parameters: fine-tuning, or a trained agent under "
                "another horizon or variant (read only when a run starts, not on --resume)"})
    env_kwargs: dict[str, Any] = field(default_factory=dict, metadata=ENV_KWARGS_METADATA)
    env_module: tuple[str, ...] = field(default=(), metadata={
        "help": "modules to import first, which register env ids (comma-separated or repeated)"})
    centre_every: int = field(default=1, metadata={
        "help": "evaluate the search centre on fresh episodes every K generations (0: never)", "identity": False})
    centre_episodes: int = field(default=5, metadata={
        "help": "fresh episodes per training variant of each centre evaluation", "identity": False})
    centre_max_steps: int = field(default=0, metadata={
        "help": "horizon of the centre's episodes (0: max_steps); they run without early stops", "identity": False})
    centre_fitness: str = field(default="same", metadata={
        "help": "what a centre episode scores: same (as --fitness) or another fitness (e.g. train on "
                "reward-no-alive, judge by distance); may be changed on --resume", "choices": CENTRE_FITNESSES,
        "identity": False})
    centre_score: str = field(default="mean", metadata={
        "help": "the centre evaluation's number that ranks best.pt and that --stop-centre compares: mean (over "
                "every training variant's episodes) or min (the worst variant's mean)",
        "choices": CENTRE_SCORES, "identity": False})
    resume_lr: float | None = field(default=None, metadata={
        "help": "with --resume: go on from the checkpoint with this ES step size instead of its current one "
                "(it then decays by lr_decay as before; metrics.csv's lr column shows the change)",
        "identity": False})
    stop_centre: float | None = field(default=None, metadata={
        "help": "stop once a centre evaluation's score (--centre-score) reaches this", "identity": False})
    max_minutes: float | None = field(default=None, metadata={
        "help": "stop after this many minutes of training (in this call)", "identity": False})
    preset: str | None = field(default=None, metadata={
        "help": "start from a shipped preset (hebb-gym presets); flags given explicitly override it",
        "identity": False})  # applied by from_preset / the train command; TrainConfig(preset=...) only records it
    tensorboard: bool = field(default=False, metadata={
        "help": "also log the metrics as TensorBoard events in OUT/tensorboard (tensorboard extra)",
        "identity": False})
    keep_centres: bool = field(default=False, metadata={
        "help": "also keep each evaluated centre as OUT/centre-GENERATION.pt (the generation of its metrics.csv "
                "row), to choose among later on other episodes (python -m agents.pretrained.add --policy)",
        "identity": False})

    def __post_init__(self) -> None:
        if isinstance(self.env_module, str):
            self.env_module = tuple(m.strip() for m in self.env_module.split(",") if m.strip())
        self.env_module = tuple(self.env_module)
        import_env_modules(self.env_module)
        if isinstance(self.early_stop, bool):  # configs written before early_stop named its rule
            self.early_stop = "auto" if self.early_stop else "off"
        self.env = parse_env_ids(self.env)
        for s in settings_of(type(self)).values():
            check_choices(s.name, getattr(self, s.name), s.choices)
        if not (self.rho == "N" or (isinstance(self.rho, int) and not isinstance(self.rho, bool) and self.rho >= 1)):
            raise ValueError(f"rho={self.rho!r} is not accepted; accepted: an int >= 1, or 'N'")
        if self.popsize < 2 or self.popsize % 2:
            raise ValueError(f"popsize={self.popsize!r} must be an even number >= 2 (antithetic sampling)")
        if self.generations < 1:
            raise ValueError(f"generations={self.generations!r} must be >= 1")
        if self.workers < 0:
            raise ValueError(f"workers={self.workers!r} must be >= 0 (0 = one per core)")
        if self.centre_max_steps < 0:
            raise ValueError(f"centre_max_steps={self.centre_max_steps!r} must be >= 0 (0: max_steps)")
        lr = self.resume_lr
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf):
            raise ValueError(f"resume_lr={self.resume_lr!r} must be a finite number > 0 (or None: keep the step size)")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"max_minutes={self.max_minutes!r} must be > 0")
        if self.centre_every < 0 or self.centre_episodes < 1:
            raise ValueError(f"centre_every={self.centre_every!r} must be >= 0 and centre_episodes="
                             f"{self.centre_episodes!r} >= 1")
        if not (self.init_std >= 0 and self.init_std < float("inf")):
            raise ValueError(f"init_std={self.init_std!r} must be a finite number >= 0")
        schedule = self.schedule()  # checks the step-size / noise settings
        check_top_directions(schedule.top_directions, self.popsize, antithetic=True)
        if self.agent == "hebbian" and self.rho != 1:  # shared rules: the mixture, which samples no pairs
            check_mixture_schedule(schedule)
            if self.init_seeds == "pair":
                raise ValueError("init_seeds='pair' pairs the antithetic individuals of OpenAI-ES; the mixture of "
                                 "shared rules (rho > 1) samples no pairs; accepted there: individual, generation")
        self.fitness_config()  # checks the fitness, early stop and horizon against the task
        self.centre_fitness_config()  # and the centre's fitness

    def schedule(self) -> Schedule:
        """The ES schedule of this run (step size, noise, their decays and floors, L2 penalty, optimiser)."""
        mine = {f.name for f in fields(self)}
        return Schedule(**{name: getattr(self, name) for name in _SCHEDULE if name in mine})

    def fitness_config(self) -> FitnessConfig:
        """The population's evaluations: the training variants, episodes, horizon, early stop, seeding."""
        return FitnessConfig(self.env, self.episodes, self.max_steps, self.early_stop, self.rollout_env_kwargs(),
                             self.fitness, self.env_module, init_seeds=self.init_seeds,
                             horizon_start=self.horizon_start, horizon_growth=self.horizon_growth)

    def centre_fitness_config(self) -> FitnessConfig:
        """The centre's evaluations: ``centre_episodes`` fresh episodes of every variant, full length, no early stop."""
        return FitnessConfig(self.env, self.centre_episodes, self.centre_max_steps or self.max_steps, "off",
                             self.rollout_env_kwargs(), self.resolved_centre_fitness(), self.env_module)

    def resolved_centre_fitness(self) -> str:
        """The fitness a centre episode scores: ``centre_fitness``, or ``fitness`` where it is ``same``."""
        return self.fitness if self.centre_fitness == "same" else self.centre_fitness

    def rollout_env_kwargs(self) -> dict[str, Any]:
        """Env kwargs of fitness rollouts; see :func:`agents.evaluation.envs.rollout_env_kwargs`."""
        return rollout_env_kwargs(self.env, self.env_kwargs, self.env_termination)

    def policy_options(self) -> dict[str, Any]:
        """The settings that apply to this run's agent kind only (the Hebbian rule, rho, init)."""
        return {s.name: getattr(self, s.name) for s in settings_of(type(self)).values()
                if s.agents is not None and self.agent in s.agents}

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values (tuples as lists), as ``config.json`` stores them."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "TrainConfig":
        """The config of preset ``name`` (``agents/training/presets/NAME.toml``), ``overrides`` on top."""
        agent = overrides.get("agent")

        def task(preset_env: Any) -> str | None:  # the task of the ids the run will train on
            ids = overrides.get("env", preset_env if preset_env is not None else cls.env)
            return task_of(parse_env_ids(ids, one_task=False)[0])

        values = load_preset(name, {f.name for f in fields(cls)} - {"preset"}, agent, task)
        return cls(**{**values, **overrides, "preset": name})

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def identity(self) -> dict[str, Any]:
        """The settings that define the run's results (not how or where it is computed, nor its length)."""
        d = self.to_json()
        for f in fields(self):
            if f.metadata.get("identity", True) is False:
                d.pop(f.name)
        return d


def build_policy(config: TrainConfig, start: bool = True) -> Policy:
    """The policy a run trains, built from the first training env (with its env kwargs) and the run seed.

    With ``start`` (a run that begins, not one resumed) and ``config.init_policy``, its parameters are those
    of that policy file, the centre the search starts from.
    """
    env = gym.make(config.env[0], **config.env_kwargs)
    try:
        policy = policy_class(config.agent).from_env(env, seed=config.seed, init_std=config.init_std,
                                                     **config.policy_options())
    finally:
        env.close()
    if config.obs_norm and policy.spec.kind != "mlp":
        raise ValueError(f"obs_norm=True needs a vector observation; {config.env[0]} gives "
                         f"{policy.observation_space.shape} images (the CNN path scales pixels to [0, 1] itself)")
    if start and config.init_policy is not None:
        _start_from(policy, config)
    return policy


def _start_from(policy: Policy, config: TrainConfig) -> None:
    """Set ``policy``'s parameters to those of ``config.init_policy``, which must be the same kind of policy."""
    from agents.policies import load_policy
    from operator import eq as equal

    from agents.policies.spaces import same_space

    if config.agent == "hebbian" and config.rho != 1:
        raise ValueError(f"init_policy={config.init_policy!r} with rho={config.rho!r}: a shared-rule run searches "
                         "the rule assignment as well, which a policy file cannot start; accepted: rho=1, or "
                         "a static or LSTM agent")
    try:
        source = load_policy(config.init_policy)
    except FileNotFoundError:
        raise ValueError(f"init_policy={config.init_policy!r}: no such file") from None
    for what, a, b, same in (("class", type(policy).__name__, type(source).__name__, equal),
                             ("options", dict(policy.options), dict(source.options), equal),
                             ("observation space", policy.observation_space, source.observation_space, same_space),
                             ("action space", policy.action_space, source.action_space, same_space),
                             ("parameter count", policy.num_params, source.num_params, equal)):
        if not same(a, b):
            raise ValueError(f"init_policy={config.init_policy!r} is not a policy this run can start from: its "
                             f"{what} is {b!r}, the run's {a!r} (same agent, options and env spaces accepted)")
    if source.obs_norm is not None:
        raise ValueError(f"init_policy={config.init_policy!r} holds an observation normaliser; a run starts its "
                         "statistics anew, under which those parameters would see other inputs; accepted: a "
                         "policy trained without --obs-norm")
    policy.set_flat(source.get_flat())


def train_config(given: dict[str, Any], out: str | os.PathLike, resume: bool = False) -> TrainConfig:
    """The config of a ``hebb-gym train`` command: its flags over the preset's values over the defaults.

    With ``resume``, the run's saved ``config.json`` stands for every flag not given, so ``--resume --out DIR``
    alone continues a run (flags given must agree with the saved run, or set how it is computed); a saved
    ``resume_lr`` is not carried over (it applied to the call that gave it).
    """
    saved_path = Path(out) / "config.json"
    if resume and saved_path.exists():
        try:
            saved = json.loads(saved_path.read_text())["train"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{saved_path} is unreadable ({exc}); choose another --out directory") from exc
        saved.pop("resume_lr", None)  # a change made by that call, not one to repeat at every later resume
        return TrainConfig.from_json({**saved, **given})
    if given.get("preset"):
        return TrainConfig.from_preset(given["preset"], **{k: v for k, v in given.items() if k != "preset"})
    return TrainConfig(**given)
