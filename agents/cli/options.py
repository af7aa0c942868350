"""Command-line flags generated from settings (:mod:`agents.util.settings`), and values read back from them.

A setting ``name`` becomes ``--name`` (underscores as dashes) with the setting's parser, default, help
and accepted values; a bool is ``--name`` / ``--no-name`` (either may override a preset's value); tuples are comma-separated (and the flag may be repeated), dicts JSON objects or their
setting's own parser. Metadata ``flag`` / ``flag_type`` / ``from_flag`` give a setting another spelling;
``shorthand`` adds a second flag setting one key of a dict (``--physics`` is ``--env-kwargs backend=...``).
"""

from __future__ import annotations

import argparse
from typing import Any, Iterable

from agents.util.settings import Setting

__all__ = ["add_settings", "flag_of", "setting_values"]


def _flag_setting(s: Setting) -> Setting:
    """The setting as the command line spells it: the flag's own type, default and choices where it has them."""
    if s.flag_annotation is None:
        return s
    return Setting(s.flag or s.name, s.flag_annotation, s.flag_default, s.help, s.flag_choices)


def flag_of(s: Setting, prefix: str = "") -> str:
    """The option string of setting ``s`` (``--max-steps``, ``--no-X`` for a bool that defaults to True), after ``prefix``."""
    name = s.flag or s.name
    if s.flag is None and _flag_setting(s).kind == "bool" and s.default is True:
        name = f"no_{name}"
    return "--" + (prefix + name).replace("_", "-")


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def _argparse_type(s: Setting):
    def parse(text: str) -> Any:
        try:
            return s.parse_text(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = s.kind
    return parse


def add_settings(parser: argparse.ArgumentParser | Any, settings: Iterable[Setting], prefix: str = "",
                 given_only: bool = False) -> list[Setting]:
    """Add one flag per setting to ``parser`` (dest: ``prefix + name``); returns the settings, for :func:`setting_values`.

    ``given_only``: flags not on the command line leave no value (so a preset's values stand for them).
    """
    added = []
    for s in settings:
        f = _flag_setting(s)
        kwargs: dict[str, Any] = {"dest": prefix + s.name, "default": argparse.SUPPRESS if given_only else f.default}
        help_text = f.help
        option = flag_of(s, prefix)
        if f.kind == "bool" and not f.optional:  # --name and --no-name, so either overrides a preset
            kwargs["action"] = argparse.BooleanOptionalAction
            option = "--" + (prefix + (s.flag or s.name)).replace("_", "-")
            help_text = f"{help_text} (default: {'on' if f.default else 'off'})"
        else:
            kwargs["type"] = _argparse_type(f)
            if f.kind == "tuple":  # comma-separated, and the flag may be repeated: --env-module a --env-module b
                kwargs["action"] = "append"
                kwargs["default"] = argparse.SUPPRESS if given_only else None
            if f.choices is not None:
                kwargs["metavar"] = "{" + ",".join(map(str, f.choices)) + "}"
            if f.default is not None and f.default != {}:
                help_text = f"{help_text} (default: {_shown(f.default)})"
        parser.add_argument(option, help=help_text, **kwargs)
        if s.shorthand is not None:
            flag, key, choices, text = s.shorthand
            parser.add_argument("--" + (prefix + flag).replace("_", "-"), dest=f"{prefix}{s.name}__{flag}",
                                choices=choices, default=argparse.SUPPRESS, help=f"{text} (--{s.name.replace('_', '-')} "
                                f"{key}=VALUE)")
        added.append(s)
    return added


def setting_values(args: argparse.Namespace, settings: Iterable[Setting], prefix: str = "") -> dict[str, Any]:
    """The value of each setting from parsed ``args`` (flags added by :func:`add_settings` with the same prefix).

    Settings whose flag left no value (``given_only``) are left out.
    """
    out = {}
    for s in settings:
        short = f"{prefix}{s.name}__{s.shorthand[0]}" if s.shorthand is not None else None
        if not hasattr(args, prefix + s.name) and not (short and hasattr(args, short)):
            continue
        value = getattr(args, prefix + s.name, s.default)
        if _flag_setting(s).kind == "tuple" and isinstance(value, list):  # repeated flags: their items in order
            value = tuple(item for part in value for item in part)
        elif _flag_setting(s).kind == "tuple" and value is None and s.default is not None:
            value = s.default
        if isinstance(value, dict):
            value = dict(value)  # never hand out argparse's default object
        if short and hasattr(args, short):
            value[s.shorthand[1]] = getattr(args, short)
        out[s.name] = s.from_flag(value) if s.from_flag is not None else value
    return out
