"""The ``hebb-gym`` command line."""

from agents.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
