"""The one table of task variants: registration, ``hebb-gym envs`` and docs/environments.md read it."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

#: Scale of a damaged lower leg (the ankle capsule), as in Najarro & Risi (2020).
DAMAGED_LEG_SCALE = 0.25
#: Scale of a lengthened lower leg, as in Palm, Najarro & Risi (genomic bottleneck paper).
LONG_LEG_SCALE = 1.5
#: Friction multipliers of the car variants (twice and half the default grip).
HIGH_FRICTION = 2.0
LOW_FRICTION = 0.5
#: Constant world-frame force on the car hull along x for the wind variants, in Box2D newtons.
WIND_FORCE = 250.0

CAR_ENTRY_POINT = "hebb_gym.car_racing:HebbCarRacing"
ANT_ENTRY_POINT = "hebb_gym.ant:make_ant"
FRONT_LEG_DAMAGE_ENTRY_POINT = "hebb_gym.ant:make_front_leg_damage"

TASKS = ("car", "ant")


@dataclass(frozen=True)
class Variant:
    """One registered task variant: its Gymnasium id and what it changes."""

    id: str
    task: str
    variant: str
    kwargs: Mapping[str, Any]
    description: str
    entry_point: str
    max_episode_steps: int = 1000
    in_task_set: bool = True
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kwargs", MappingProxyType(dict(self.kwargs)))


def _car(variant: str, kwargs: Mapping[str, Any], description: str) -> Variant:
    return Variant(f"HebbCarRacing-{variant}-v0", "car", variant, kwargs, description, CAR_ENTRY_POINT)


def _ant(variant: str, kwargs: Mapping[str, Any], description: str, **extra: Any) -> Variant:
    return Variant(f"HebbAnt-{variant}-v0", "ant", variant, kwargs, description, ANT_ENTRY_POINT, **extra)


VARIANTS: tuple[Variant, ...] = (
    _car("Default", {}, "CarRacing as in Gymnasium"),
    _car("HighFriction", {"friction": HIGH_FRICTION}, f"road and grass friction x{HIGH_FRICTION:g}"),
    _car("LowFriction", {"friction": LOW_FRICTION}, f"road and grass friction x{LOW_FRICTION:g}"),
    _car("WindWest", {"wind": -WIND_FORCE}, f"constant {WIND_FORCE:g} N force on the hull towards -x (west)"),
    _car("WindEast", {"wind": WIND_FORCE}, f"constant {WIND_FORCE:g} N force on the hull towards +x (east)"),
    _ant("Default", {}, "the quadruped as is"),
    _ant(
        "LeftFrontLegDamage",
        {"leg_scales": {"front_left": DAMAGED_LEG_SCALE}},
        f"front-left lower leg shortened to {DAMAGED_LEG_SCALE:g} of its length",
    ),
    _ant(
        "RightFrontLegDamage",
        {"leg_scales": {"front_right": DAMAGED_LEG_SCALE}},
        f"front-right lower leg shortened to {DAMAGED_LEG_SCALE:g} of its length",
    ),
    _ant(
        "LongFrontLegs",
        {"leg_scales": {"front_left": LONG_LEG_SCALE, "front_right": LONG_LEG_SCALE}},
        f"both front lower legs {LONG_LEG_SCALE:g}x as long",
    ),
    _ant(
        "LongRearLegs",
        {"leg_scales": {"rear_left": LONG_LEG_SCALE, "rear_right": LONG_LEG_SCALE}},
        f"both rear lower legs {LONG_LEG_SCALE:g}x as long",
    ),
    Variant(
        "HebbAnt-FrontLegDamage-v0",
        "ant",
        "FrontLegDamage",
        {"side": "left"},
        f"one front lower leg shortened to {DAMAGED_LEG_SCALE:g}; side='left' (default) or 'right'",
        FRONT_LEG_DAMAGE_ENTRY_POINT,
        in_task_set=False,
    ),
)

_BY_ID = {v.id: v for v in VARIANTS}


def variants(task: str) -> tuple[str, ...]:
    """The five IDs of a task (``"car"`` or ``"ant"``) used for leave-one-out, default first."""
    if task not in TASKS:
        raise ValueError(f"task={task!r} is not a task; accepted: {', '.join(map(repr, TASKS))}")
    return tuple(v.id for v in VARIANTS if v.task == task and v.in_task_set)


def get_variant(env_id: str) -> Variant:
    """The table row of a registered id (with or without the ``hebb_gym:`` prefix)."""
    key = env_id.split(":", 1)[1] if env_id.startswith("hebb_gym:") else env_id
    try:
        return _BY_ID[key]
    except KeyError:
        raise ValueError(
            f"env id {env_id!r} is not a hebb-gym variant; accepted: {', '.join(_BY_ID)}"
        ) from None


def task_of(env_id: str) -> str:
    """``"car"`` or ``"ant"`` for a hebb-gym id; stock ids CarRacing-v3 / Ant-v5 are recognised too."""
    key = env_id.split(":", 1)[-1]
    if key in _BY_ID:
        return _BY_ID[key].task
    if key.startswith("CarRacing"):
        return "car"
    if key.startswith("Ant"):
        return "ant"
    raise ValueError(f"env id {env_id!r} belongs to no known task; accepted: hebb-gym ids, CarRacing-*, Ant*")
