"""Trained agents shipped inside the package, loadable by name: ``load_policy("pretrained:hebbian-ant")``.

``index.json`` beside the policy files lists each agent: its file, kind, training variants, preset, the
command that trained it, its env-steps and wall-clock, and the scores measured on fresh episodes.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["PREFIX", "entries", "entry", "is_pretrained", "path_of", "score_text"]

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


def score_text(score: dict[str, Any], brief: bool = False) -> str:
    """One index score as text: the distance where the env reports one (the quadruped), else the return (the car);
    ``brief``: that number alone, else with the return and the episode count."""
    if score.get("distance_mean") is None:
        text = f"return {score['return_mean']:.1f} +- {score['return_std']:.1f}"
        return text if brief else f"{text} over {score['episodes']} episodes"
    text = f"{score['distance_mean']:.1f} +- {score['distance_std']:.1f} m"
    return text if brief else f"distance {text}, return {score['return_mean']:.1f} over {score['episodes']} episodes"
