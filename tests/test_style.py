"""The package, tests, benchmarks and chapters are ruff clean (configuration in pyproject.toml)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    if importlib.util.find_spec("ruff") is None:  # the interpreter that runs the tests, not whatever is on PATH
        pytest.fail(f"ruff is not installed for {sys.executable}: pip install -r requirements.txt installs it")
    targets = [d for d in ("src", "tests", "benchmarks", "scripts", "book") if (ROOT / d).is_dir()]
    assert "src" in targets and "tests" in targets
    result = subprocess.run([sys.executable, "-m", "ruff", "check", *targets], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
