"""Trained agents shipped inside the package, loadable by name: ``load_policy("pretrained:hebbian-ant")``.

``index.json`` beside the policy files lists each agent: its file, kind, training variants, preset, the
command that trained it, its env-steps and wall-clock, and the scores measured on fresh episodes.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["COMPUTE_KEYS", "PREFIX", "entries", "entry", "is_pretrained", "path_of", "score_text", "started_from",
           "total_compute"]

#: How a shipped agent is named wherever a policy file is accepted.
PREFIX = "pretrained:"
INDEX = "index.json"


def _folder() -> Any:
    return resources.files(__name__)


def entries() -> list[dict[str, Any]]:
    """The index: one dict per shipped agent, in the index's order."""
    index = _folder() / INDEX
    if not index.is_file():
        return []
    return list(json.loads(index.read_text())["agents"])


def is_pretrained(target: Any) -> bool:
    """Whether ``target`` names a shipped agent (``"pretrained:NAME"``)."""
    return isinstance(target, str) and target.startswith(PREFIX)


def entry(name: str) -> dict[str, Any]:
    """The index entry of ``name`` (with or without the ``pretrained:`` prefix)."""
    bare = name[len(PREFIX):] if is_pretrained(name) else name
    known = {e["name"]: e for e in entries()}
    if bare not in known:
        raise ValueError(f"{PREFIX}{bare} is not a shipped agent; accepted: "
                         f"{', '.join(PREFIX + n for n in known) or 'none (this build ships no agents)'}")
    return known[bare]


def path_of(name: str) -> Path:
    """The file of shipped agent ``name`` inside the installed package."""
    return Path(str(_folder() / entry(name)["file"]))


#: What :func:`started_from` copies from a shipped agent a run began at (``--init-policy pretrained:NAME``).
COMPUTE_KEYS = ("generations", "env_steps", "wall_clock_minutes", "run_file", "sha256")


def started_from(init_policy: str | None, shipped: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """Where a run begun at ``init_policy`` started: the policy named with its SHA-256 and, when it is a shipped
    agent of ``shipped`` (default: the index now), that agent's compute and its own ``started_from``, so that a
    fine-tuned agent's total is on record; likewise for a file with the same bytes as a shipped agent's (named
    then in ``shipped_as``). A run records this in its ``config.json`` when it starts: by the time it is
    shipped, ``pretrained:NAME`` may name what the run itself produced."""
    if init_policy is None:
        return None
    start: dict[str, Any] = {"policy": init_policy}
    known = entries() if shipped is None else shipped
    source = None
    if is_pretrained(init_policy):
        source = next((e for e in known if e["name"] == init_policy[len(PREFIX):]), None)
    elif Path(init_policy).is_file():
        start["sha256"] = hashlib.sha256(Path(init_policy).read_bytes()).hexdigest()
        source = next((e for e in known if e.get("sha256") == start["sha256"]), None)
        if source is not None:
            start["shipped_as"] = PREFIX + source["name"]
    if source is not None:
        start.update({k: source[k] for k in COMPUTE_KEYS if k in source})
        if "started_from" in source:
            start["started_from"] = source["started_from"]
    return start


def total_compute(record: dict[str, Any]) -> dict[str, float]:
    """The generations, env-steps and trainer minutes of an index entry (or a ``started_from`` record) together
    with those of every ``started_from`` behind it, as far as they are on record."""
    total = {"generations": 0, "env_steps": 0, "wall_clock_minutes": 0.0}
    while record is not None:
        for k in total:
            total[k] += record.get(k) or 0
        record = record.get("started_from")
    total["wall_clock_minutes"] = round(total["wall_clock_minutes"], 1)
    return total


def score_text(score: dict[str, Any], brief: bool = False) -> str:
    """One index score as text: the distance where the env reports one (the quadruped), else the return (the car);
    ``brief``: that number alone, else with the return and the episode count."""
    if score.get("distance_mean") is None:
        text = f"return {score['return_mean']:.1f} +- {score['return_std']:.1f}"
        return text if brief else f"{text} over {score['episodes']} episodes"
    text = f"{score['distance_mean']:.1f} +- {score['distance_std']:.1f} m"
    return text if brief else f"distance {text}, return {score['return_mean']:.1f} over {score['episodes']} episodes"
