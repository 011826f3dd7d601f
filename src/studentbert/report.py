"""Numbers a chapter measured, collected into the book's results file.

A chapter calls :func:`record` with the figures its prose relies on (an accuracy, a speed-up, a time).
When the chapter runs under ``scripts/run_book.py``, the environment variable ``STUDENTBERT_RESULTS`` names a
JSON-lines file and each call appends one line to it; the script gathers the lines into ``results.json`` next
to the executed notebooks. Run any other way (Colab, Jupyter), :func:`record` only returns its arguments.

    >>> record("pretraining", mlm_accuracy=0.61, nsp_accuracy=0.93)  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = "https://github.com/studentbert/studentbert"

ENV = "STUDENTBERT_RESULTS"


def _json_safe(value):
    """JSON-safe: tensors and numpy scalars become Python numbers, NaN/inf become strings."""
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def record(section: str, **values) -> dict:
    """Record ``values`` (numbers, strings, small lists or dicts) under ``section``; return them as given.

    Raises:
        ValueError: no values, or a value that cannot be written as JSON.
    """
    if not values:
        raise ValueError("record() needs at least one value, e.g. record('pretraining', nsp_accuracy=0.93).")
    path = os.environ.get(ENV)
    if path:
        entry = {"section": section, "values": _json_safe(values)}
        try:
            line = json.dumps(entry, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"record({section!r}, ...): a value cannot be written as JSON ({e}); pass numbers, "
                             "strings, lists or dicts.") from e
        with Path(path).open("a") as f:
            f.write(line + "\n")
    return values


def read(path: str | Path) -> dict[str, dict]:
    """The sections recorded in a JSON-lines file, later values of a key replacing earlier ones."""
    sections: dict[str, dict] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            sections.setdefault(entry["section"], {}).update(entry["values"])
    return sections


def benchmarks_dir() -> Path:
    """The repository's ``benchmarks/`` directory, whose ``results/`` the chapters read.

    Looked for in the working directory and its parents (a clone); on Colab, where the notebook runs without
    the repository, a shallow clone is made into ``/content/studentbert`` (the results are not in the package).

    Raises:
        FileNotFoundError: not inside a clone, and not on Colab.
    """
    for base in (Path.cwd(), *Path.cwd().parents):
        if (base / "benchmarks" / "results").is_dir():
            return base / "benchmarks"
    if "google.colab" in sys.modules:
        subprocess.run(["git", "clone", "-q", "--depth", "1", REPOSITORY, "/content/studentbert"], check=True)
        return Path("/content/studentbert/benchmarks")
    raise FileNotFoundError("benchmarks/results/ not found: run this chapter from a clone of the repository "
                            f"({REPOSITORY}).")
