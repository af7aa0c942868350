"""The one CSV writer and reader of the package: rows of dicts, floats written exactly (``repr``), atomic files."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from agents.util.atomic import atomic_write_text


def _cell(value: Any, nonfinite: str | None) -> Any:
    if isinstance(value, bool) or not isinstance(value, (float, int)) and not hasattr(value, "dtype"):
        return value
    if hasattr(value, "dtype"):  # numpy scalars: plain Python numbers (numpy 2 reprs them as np.float64(...))
        value = value.item()
    if isinstance(value, float):
        if nonfinite is not None and not math.isfinite(value):
            return nonfinite
        return repr(value)
    return value


def csv_text(rows: Iterable[Mapping[str, Any]], fields: Sequence[str] | None = None,
             nonfinite: str | None = None) -> str:
    """CSV text with a header: ``fields`` (default: the first row's keys) in order, floats as ``repr``.

    ``nonfinite``: what to write for NaN / inf floats (default: Python's ``nan`` / ``inf``).
    """
    rows = list(rows)
    if fields is None:
        if not rows:
            raise ValueError("rows is empty and no fields were given; a CSV needs its column names")
        fields = list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _cell(v, nonfinite) for k, v in r.items()})
    return buf.getvalue()


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], fields: Sequence[str] | None = None,
              nonfinite: str | None = None) -> Path:
    """Write :func:`csv_text` to ``path`` atomically."""
    return atomic_write_text(path, csv_text(rows, fields, nonfinite))


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a CSV file with a header, as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
