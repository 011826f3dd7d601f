"""The book, end to end, as CI and readers run it.

* every chapter is committed clean (no outputs), with a ``parameters`` cell, a Colab badge and set-up cells;
* ``scripts/run_book.py --profile tiny --build`` executes every chapter once, in book order, offline, sharing
  one artifact cache (a chapter reuses the tokenizer and teacher an earlier one produced), records the time of
  each chapter and the numbers it measured, and builds the website from the executed notebooks;
* the built site opens in headless Chromium: every chapter page has its title, at least one figure (opaque, so
  that it reads on the dark theme too) and no error output;
* ``--profile full --smoke`` executes every cell of every chapter with the full profile's shapes (BERT-base
  teacher, 6-layer student, the bert-base-uncased vocabulary, 128 tokens, SST-2's schema) and a handful of
  steps, offline, on local stand-ins of the hub's models and datasets (about 8 minutes on 2 cores).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = sorted(BOOK.glob("[0-9][0-9]_*.ipynb"))
RUN_BOOK = ROOT / "scripts" / "run_book.py"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _title(path: Path) -> str:
    first = "".join(json.loads(path.read_text())["cells"][0]["source"])
    return re.search(r"^# (.+)$", first, re.M).group(1).strip()


def _run_book(*args: str, out: Path, home: Path) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    proc = subprocess.run([sys.executable, str(RUN_BOOK), *args, "--output-dir", str(out), "--home", str(home)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    results_file = out / "results.json"
    assert results_file.exists(), f"run_book.py wrote no results file:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    results = json.loads(results_file.read_text())
    results["_returncode"], results["_log"] = proc.returncode, proc.stdout[-3000:] + proc.stderr[-3000:]
    return results


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory) -> dict:
    """The whole tiny book, executed once and built into a website (about 10 minutes on 2 cores)."""
    out = tmp_path_factory.mktemp("run-tiny")
    results = _run_book("--profile", "tiny", "--build", out=out, home=tmp_path_factory.mktemp("studentbert_home"))
    results["_out"] = out
    return results


def test_notebooks_are_committed_clean_and_parametrised():
    assert NOTEBOOKS, "no chapters found in book/"
    toc = (ROOT / "_toc.yml").read_text()
    for path in NOTEBOOKS:
        assert f"book/{path.stem}" in toc, f"{path.name} is not in _toc.yml"
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert not any(c.get("outputs") for c in code), f"{path.name} is committed with outputs"
        params = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(params) == 1 and 'profile = "tiny"' in "".join(params[0]["source"]), (
            f"{path.name} needs one cell tagged 'parameters' that sets profile = \"tiny\""
        )
        assert "smoke = False" in "".join(params[0]["source"]) and "overrides = {}" in "".join(params[0]["source"]), (
            f"{path.name}: the parameters cell also sets smoke = False and overrides = {{}} (run_book.py --smoke)"
        )
        assert any("setup" in c.get("metadata", {}).get("tags", []) for c in code), (
            f"{path.name}: tag the imports cell 'setup' (run_book.py --dry-run executes it)"
        )
        first = "".join(nb["cells"][0]["source"])
        assert f"colab.research.google.com/github/studentbert/studentbert/blob/main/book/{path.name}" in first, (
            f"{path.name}: the first cell must carry the Colab badge for this notebook"
        )
        colab = "".join(code[1]["source"])
        pip_args = re.findall(r'"([^"]+)"', colab)
        assert '"google.colab" in sys.modules' in colab and any(a.startswith("studentbert[") for a in pip_args) \
            and not any(a.startswith("torch") for a in pip_args), (
            f"{path.name}: the second code cell installs the package on Colab, without pinning torch"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_chapter_runs_with_tiny_profile(path: Path, tiny_book: dict):
    records = {c["chapter"]: c for c in tiny_book["chapters"]}
    assert path.stem in records, f"run_book.py did not run {path.name}:\n{tiny_book['_log']}"
    record = records[path.stem]
    assert record["status"] == "ok", f"{path.name}: {record.get('error')}"
    executed = json.loads((tiny_book["_out"] / "notebooks" / path.name).read_text())
    assert executed["metadata"]["papermill"]["parameters"] == {"profile": "tiny"}
    code = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code if "".join(c["source"]).strip()), "a cell did not run"
    assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_results_file_records_times_and_measurements(tiny_book: dict):
    assert tiny_book["_returncode"] == 0, tiny_book["_log"]
    assert tiny_book["profile"] == "tiny" and not tiny_book["failed"]
    assert [c["chapter"] for c in tiny_book["chapters"]] == [p.stem for p in NOTEBOOKS]
    for c in tiny_book["chapters"]:
        assert c["seconds"] > 0 and c["budget_s"] > 0 and isinstance(c["within_budget"], bool)
    assert tiny_book["total_seconds"] == pytest.approx(sum(c["seconds"] for c in tiny_book["chapters"]), abs=0.5)
    assert tiny_book["total_goal_s"] == 600 and isinstance(tiny_book["within_total_goal"], bool)  # recorded, not timed
    recorded = {c["chapter"]: c.get("recorded", {}) for c in tiny_book["chapters"]}
    assert recorded["04_pretraining"]["pretraining"]["heldout_nsp_accuracy"] > 0.5
    assert recorded["07_finetuning"]["comparison"]["teacher_accuracy"] > 0.5


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def test_site_renders_in_chromium(tiny_book: dict, tmp_path: Path):
    chromium = _chromium()
    if chromium is None:
        if os.environ.get("STUDENTBERT_REQUIRE_BROWSER"):
            pytest.fail("Chromium is not installed: apt-get install -y chromium (as .ci/run does)")
        pytest.skip("Chromium is not installed (apt-get install -y chromium); CI installs it")
    site = Path(tiny_book["site"])
    assert (site / "index.html").exists()
    from matplotlib.image import imread

    for path in NOTEBOOKS:
        page = site / "book" / f"{path.stem}.html"
        assert page.exists(), f"the site has no page for {path.name}"
        proc = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                               "--virtual-time-budget=3000", "--dump-dom", page.as_uri()],
                              capture_output=True, text=True, timeout=120)
        dom = proc.stdout
        assert proc.returncode == 0 and "</html>" in dom, f"Chromium could not render {page}: {proc.stderr[-2000:]}"
        title = _title(path)
        h1 = [html.unescape(re.sub(r"<[^>]+>", "", h)).replace("#", "").strip()
              for h in re.findall(r"<h1[^>]*>(.*?)</h1>", dom, re.S)]
        assert title in h1, f"{page.name}: heading {title!r} not rendered (h1: {h1})"
        assert "output traceback" not in dom and "Traceback (most recent call last)" not in dom, (
            f"{page.name} shows an error"
        )
        images = [src for src in re.findall(r'<img[^>]+src="([^"]+\.png)"', dom) if "_images/" in src]
        assert images, f"{page.name} has no figure"
        for src in images:
            pixels = imread(page.parent / src)
            if pixels.ndim == 3 and pixels.shape[2] == 4:
                assert pixels[..., 3].min() == 1.0, f"{src} on {page.name} has a transparent background"


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> dict:
    """Every chapter with profile="full" and smoke=True, on local stand-ins (about 8 minutes on 2 cores)."""
    out = tmp_path_factory.mktemp("run-smoke")
    results = _run_book("--profile", "full", "--smoke", out=out, home=tmp_path_factory.mktemp("smoke_home"))
    results["_out"] = out
    return results


def test_full_profile_at_smoke_scale_runs_every_cell_of_every_chapter(smoke_book: dict):
    assert smoke_book["_returncode"] == 0, smoke_book["_log"]
    assert smoke_book["profile"] == "full" and smoke_book["smoke"] is True and not smoke_book["failed"]
    assert [c["chapter"] for c in smoke_book["chapters"]] == [p.stem for p in NOTEBOOKS]
    assert smoke_book["total_seconds"] > 0  # recorded, not judged
    models = smoke_book["models"]  # the full shapes: BERT-base with its heads, the 6-layer student with its MLM head
    assert models["teacher_layers"] == 12 and models["student_layers"] == 6 and models["hidden_size"] == 768
    assert models["vocab_size"] == 30522 and models["max_length"] == 128
    assert 109e6 < models["teacher_parameters"] < 111e6 and 66e6 < models["student_parameters"] < 68e6
    standins = smoke_book["overrides"]
    assert Path(standins["teacher_checkpoint"]).name == "bert-base-uncased" and Path(standins["task.name"]).name == "sst2"
    for path in NOTEBOOKS:
        executed = json.loads((smoke_book["_out"] / "notebooks" / path.name).read_text())
        assert executed["metadata"]["papermill"]["parameters"]["profile"] == "full"
        assert executed["metadata"]["papermill"]["parameters"]["smoke"] is True
        code = [c for c in executed["cells"] if c["cell_type"] == "code"]
        assert all(c.get("execution_count") for c in code if "".join(c["source"]).strip()), f"{path.name}: a cell did not run"
        assert not [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
