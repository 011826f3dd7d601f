"""Every chapter executes with the tiny profile (papermill), in book order, offline.

The chapters share one artifact cache (STUDENTBERT_HOME), as they do when the book is built: a chapter
reuses the tokenizer and teacher an earlier chapter produced, and builds them itself when run alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def artifact_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("studentbert_home")


def test_notebooks_are_committed_clean_and_parametrised():
    assert NOTEBOOKS, "no chapters found in book/"
    for path in NOTEBOOKS:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") for c in code), f"{path.name} is committed with outputs"
        params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1 and 'profile = "tiny"' in "".join(params[0]["source"]), (
            f"{path.name} needs one cell tagged 'parameters' that sets profile = \"tiny\""
        )
        first = "".join(nb["cells"][0]["source"])
        assert f"colab.research.google.com/github/studentbert/studentbert/blob/main/book/{path.name}" in first, (
            f"{path.name}: the first cell must carry the Colab badge for this notebook"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_with_tiny_profile(path: Path, artifact_home: Path, tmp_path: Path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("STUDENTBERT_HOME", str(artifact_home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path), str(out), parameters={"profile": "tiny"}, cwd=str(BOOK), kernel_name="python3",
        progress_bar=False, log_output=False,
    )
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
