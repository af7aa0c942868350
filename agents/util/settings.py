"""Settings as data: one :class:`Setting` per field of a config dataclass, read from its annotation and metadata.

The command line (``agents/cli/options.py``) and the leave-one-out agent specs (``hebbian:rho=16``) read
settings only through these, so a field added to a config dataclass is a flag and a spec option with no
other edit. Field metadata understood (all optional):

``help``
    one line, what the setting does;
``choices``
    the accepted values (a registry tuple such as ``AGENTS``), checked by :func:`check_choices`;
``parse``
    ``text -> value``, replacing the parser of the annotated type (e.g. ``rho``: an int or ``N``);
``agents``
    the agent kinds the setting applies to (e.g. ``("hebbian",)`` for the rule options);
``flag``
    the command-line spelling when it is not ``--field-name`` (no dashes);
``flag_type``, ``flag_default``, ``flag_choices``, ``from_flag``
    a flag whose value is not the field's own: the annotation of the flag's value, its default, its
    accepted values and ``flag value -> field value``;
``shorthand``
    ``(flag, key, choices, help)``: a second flag that sets one key of a dict setting (``--physics bullet``
    is ``--env-kwargs backend=bullet``).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = ["Setting", "check_choices", "kind_of", "parse_bool", "settings_of"]

KINDS = ("bool", "int", "float", "str", "tuple", "dict")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def parse_bool(text: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case) -> bool; ValueError otherwise."""
    t = str(text).strip().lower()
    if t in _TRUE or t in _FALSE:
        return t in _TRUE
    raise ValueError(f"{text!r} is not a bool; accepted: true, false (or yes/no, on/off, 1/0)")


def kind_of(annotation: Any) -> tuple[str, bool]:
    """(kind, optional) of a field annotation: kind one of ``KINDS``; optional when ``None`` is allowed.

    Unions of several types (``int | str``) are kind ``str`` and need a ``parse`` in the field's metadata.
    """
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if len(args) != 1:
            return "str", optional
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if origin is tuple or annotation is tuple:
        return "tuple", optional
    if origin is dict or annotation is dict:
        return "dict", optional
    for kind, typ in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if annotation is typ:
            return kind, optional
    raise TypeError(f"settings of type {annotation!r} are not supported; accepted: bool, int, float, str, "
                    "tuple[str, ...], dict, and those | None")


@dataclass(frozen=True)
class Setting:
    """One setting: name, annotated type, default, help, accepted values and how text becomes a value."""

    name: str
    annotation: Any
    default: Any
    help: str = ""
    choices: tuple[Any, ...] | None = None
    parse: Callable[[str], Any] | None = None
    agents: tuple[str, ...] | None = None
    flag: str | None = None
    flag_annotation: Any = None
    flag_default: Any = None
    flag_choices: tuple[Any, ...] | None = None
    from_flag: Callable[[Any], Any] | None = None
    shorthand: tuple[str, str, tuple[Any, ...], str] | None = None  # (flag, dict key, choices, help)

    @property
    def kind(self) -> str:
        return kind_of(self.annotation)[0]

    @property
    def optional(self) -> bool:
        return kind_of(self.annotation)[1]

    def parse_text(self, text: str) -> Any:
        """The value of this setting written as ``text``; ValueError naming the setting and what is accepted."""
        kind, optional = kind_of(self.annotation)
        if optional and text.strip().lower() == "none":
            return None
        try:
            if self.parse is not None:
                value = self.parse(text)
            elif kind == "bool":
                value = parse_bool(text)
            elif kind == "int":
                value = int(text)
            elif kind == "float":
                value = float(text)
            elif kind == "tuple":
                value = tuple(t.strip() for t in text.split(",") if t.strip())
            elif kind == "dict":
                value = json.loads(text)
                if not isinstance(value, dict):
                    raise ValueError("not a JSON object")
            else:
                value = text
        except ValueError as exc:
            accepted = {"int": "an int", "float": "a float", "bool": "true or false",
                        "dict": 'a JSON object such as {"key": 1}'}.get(kind, str(exc))
            if self.parse is not None:
                accepted = str(exc)
            raise ValueError(f"{self.name}={text!r} is not accepted; accepted: {accepted}"
                             + (" or none" if optional else "")) from None
        check_choices(self.name, value, self.choices)
        return value


def check_choices(name: str, value: Any, choices: tuple[Any, ...] | None) -> None:
    """ValueError naming ``name`` and the accepted values when ``value`` is not one of ``choices``."""
    if choices is not None and value not in choices:
        raise ValueError(f"{name}={value!r} is not known; accepted: {', '.join(map(str, choices))}")


@functools.lru_cache(maxsize=None)
def settings_of(cls: type) -> Mapping[str, Setting]:
    """The :class:`Setting` of every field of dataclass ``cls``, in field order (read-only, cached)."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        md: Mapping[str, Any] = f.metadata
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        choices, flag_choices = md.get("choices"), md.get("flag_choices")
        out[f.name] = Setting(
            f.name, hints[f.name], default, md.get("help", ""), None if choices is None else tuple(choices),
            md.get("parse"), md.get("agents"), md.get("flag"), md.get("flag_type"), md.get("flag_default"),
            None if flag_choices is None else tuple(flag_choices), md.get("from_flag"), md.get("shorthand"),
        )
    return types.MappingProxyType(out)
