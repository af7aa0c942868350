"""Quadruped morphologies: scale the lower-leg (ankle) capsules of the stock ant MJCF by leg.

One pure function, :func:`scale_lower_legs`, edits the model text for both backends: Gymnasium's
``mujoco/assets/ant.xml`` and pybullet_data's ``mjcf/ant.xml`` differ in friction, joint ranges,
assets and the floor, but their four ankle capsules are identical (``fromto`` from the ankle joint
along the leg's diagonal, 0.4*sqrt(2) = 0.566 long, radius 0.08).

Legs are named by where they are, not by the XML names, which mislead. Per leg: quadrant (x, y);
XML leg body; XML ankle geom; pybullet foot link (its ``foot_list`` order gives the bullet
observation's contact order); joints / Ant-v5 actuators:

- ``front_left``  (+, +): ``front_left_leg``; ``left_ankle_geom``; ``front_left_foot``; hip_1, ankle_1
- ``rear_left``   (-, +): ``front_right_leg``; ``right_ankle_geom``; ``front_right_foot``; hip_2, ankle_2
- ``rear_right``  (-, -): ``back_leg`` (Gymnasium) / ``left_back_leg`` (pybullet); ``third_ankle_geom``;
  ``left_back_foot``; hip_3, ankle_3
- ``front_right`` (+, -): ``right_back_leg``; ``fourth_ankle_geom``; ``right_back_foot``; hip_4, ankle_4

FRONT is +x, the direction both backends reward walking in; LEFT is +y. The mapping is not read
from names: each lower-leg capsule is classified by the signs of its ``fromto`` direction.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping

import numpy as np

#: The four legs, by position on the body (front = +x, left = +y).
LEGS: tuple[str, ...] = ("front_left", "front_right", "rear_left", "rear_right")

_QUADRANT_TO_LEG = {
    (1, 1): "front_left",
    (1, -1): "front_right",
    (-1, 1): "rear_left",
    (-1, -1): "rear_right",
}


def leg_of_direction(dx: float, dy: float) -> str:
    """The leg whose quadrant contains the horizontal direction (dx, dy): front is +x, left is +y."""
    if dx == 0 or dy == 0 or not (math.isfinite(dx) and math.isfinite(dy)):
        raise ValueError(
            f"direction ({dx!r}, {dy!r}) lies on an axis; accepted: a direction inside one quadrant"
        )
    return _QUADRANT_TO_LEG[(1 if dx > 0 else -1, 1 if dy > 0 else -1)]


def validate_leg_scales(leg_scales: Mapping[str, float] | None) -> dict[str, float]:
    """Check a leg -> scale mapping (any subset of :data:`LEGS`, positive finite scales); return a dict."""
    if leg_scales is None:
        return {}
    if not isinstance(leg_scales, Mapping):
        raise TypeError(
            f"leg_scales={leg_scales!r} is not a mapping; accepted: a dict leg -> positive scale, legs {LEGS}"
        )
    checked: dict[str, float] = {}
    for leg, scale in leg_scales.items():
        if leg not in LEGS:
            accepted = ", ".join(map(repr, LEGS))
            raise ValueError(f"leg_scales has unknown leg {leg!r}; accepted legs: {accepted}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)):
            raise ValueError(
                f"leg_scales[{leg!r}]={scale!r} is not a number; accepted: a positive finite float"
            )
        value = float(scale)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(
                f"leg_scales[{leg!r}]={scale!r} is not allowed; accepted: a positive finite float"
            )
        checked[leg] = value
    return checked


def _parse(xml_text: str) -> ET.Element:
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        return ET.fromstring(xml_text, parser=parser)
    except ET.ParseError as exc:
        raise ValueError(f"xml_text is not well-formed XML ({exc}); accepted: the ant MJCF text") from None


def _fromto(geom: ET.Element) -> np.ndarray:
    values = np.array([float(v) for v in geom.get("fromto", "").split()], dtype=np.float64)
    if values.shape != (6,):
        raise ValueError(f"geom {geom.get('name')!r} has fromto={geom.get('fromto')!r}; expected six numbers")
    return values


def _lower_leg_geoms(root: ET.Element) -> dict[str, ET.Element]:
    """Map each leg to its lower-leg capsule: the ``fromto`` capsule of a leaf body below the torso."""
    torso = next((b for b in root.iter("body") if b.get("name") == "torso"), None)
    if torso is None:
        raise ValueError("xml_text has no body named 'torso'; accepted: the stock ant MJCF")
    found: dict[str, ET.Element] = {}
    for body in torso.iter("body"):
        if body is torso or body.find("body") is not None:
            continue
        capsules = [g for g in body.findall("geom") if g.get("type") == "capsule" and g.get("fromto")]
        if len(capsules) != 1:
            continue
        start_end = _fromto(capsules[0])
        direction = start_end[3:] - start_end[:3]
        leg = leg_of_direction(direction[0], direction[1])
        if leg in found:
            raise ValueError(f"xml_text has two lower-leg capsules in the {leg} quadrant; expected one")
        found[leg] = capsules[0]
    if set(found) != set(LEGS):
        raise ValueError(f"xml_text has lower legs {sorted(found)}; expected one in each of {LEGS}")
    return found


def _format(values: np.ndarray) -> str:
    return " ".join(repr(round(float(v), 12)) for v in values)


def scale_lower_legs(xml_text: str, leg_scales: Mapping[str, float] | None) -> str:
    """Return the ant MJCF text with each named leg's ankle capsule ``fromto`` scaled about its start point.

    The capsule keeps its start (the ankle joint), direction and radius; only its length changes, so a
    scale of 0.25 is the damaged leg and 1.5 the long leg. Legs not named are left byte-for-byte as in
    the parsed model. Mass follows from the geometry (the model computes inertia from geoms).
    """
    scales = validate_leg_scales(leg_scales)
    root = _parse(xml_text)
    geoms = _lower_leg_geoms(root)
    if not scales:
        return xml_text
    for leg, scale in scales.items():
        geom = geoms[leg]
        start_end = _fromto(geom)
        start = start_end[:3]
        end = start + scale * (start_end[3:] - start)
        geom.set("fromto", _format(np.concatenate([start, end])))
    return ET.tostring(root, encoding="unicode")


def lower_leg_lengths(xml_text: str) -> dict[str, float]:
    """Lengths of the four lower-leg capsule segments (``fromto`` distance, caps excluded) in the XML text."""
    geoms = _lower_leg_geoms(_parse(xml_text))
    return {leg: float(np.linalg.norm(np.diff(_fromto(geoms[leg]).reshape(2, 3), axis=0))) for leg in LEGS}


def stock_xml(backend: str) -> str:
    """The stock ant MJCF text of a backend: ``"mujoco"`` (Gymnasium's) or ``"bullet"`` (pybullet_data's)."""
    if backend == "mujoco":
        import gymnasium  # not gymnasium.envs.mujoco: importing mujoco here would be a side effect

        path = os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "ant.xml")
    elif backend == "bullet":
        import pybullet_data

        path = os.path.join(pybullet_data.getDataPath(), "mjcf", "ant.xml")
    else:
        raise ValueError(f"backend={backend!r} is not a backend; accepted: 'mujoco', 'bullet'")
    with open(path, encoding="utf-8") as f:
        return f.read()


@contextlib.contextmanager
def model_file(xml_text: str, name: str = "ant.xml") -> Iterator[str]:
    """Yield the path of a private temporary file holding ``xml_text``, written atomically, removed on exit.

    Simulators load models from paths; the file lives only as long as the load needs it.
    """
    directory = tempfile.mkdtemp(prefix="hebb_gym_ant_")
    try:
        final = os.path.join(directory, name)
        partial = final + ".partial"
        with open(partial, "w", encoding="utf-8") as f:
            f.write(xml_text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, final)
        yield final
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def require_display(render_mode: str | None) -> None:
    """Refuse ``render_mode="human"`` on a Linux machine without a display, instead of aborting the process.

    MuJoCo's GLFW window (and PyBullet's GUI) kill the interpreter with a C assertion when headless.
    """
    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    )
    if render_mode == "human" and headless:
        raise RuntimeError(
            "render_mode='human' needs a display and DISPLAY is unset; use render_mode='rgb_array' headless"
        )
