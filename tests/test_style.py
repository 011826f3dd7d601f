"""The package, tests, benchmarks and chapters are ruff clean (configuration in pyproject.toml)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_clean():
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.fail("ruff is not installed: pip install -r requirements.txt installs it")
    targets = [d for d in ("src", "tests", "benchmarks", "scripts", "book") if (ROOT / d).is_dir()]
    assert "src" in targets and "tests" in targets
    result = subprocess.run([ruff, "check", *targets], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
