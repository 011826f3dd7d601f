"""studentbert.report: the numbers chapters record for scripts/run_book.py's results file."""

import json
import math

import pytest
import torch

from studentbert.report import ENV, benchmarks_dir, read, record


def test_record_appends_json_lines_and_read_merges_them(tmp_path, monkeypatch):
    path = tmp_path / "recorded.jsonl"
    monkeypatch.setenv(ENV, str(path))
    assert record("pretraining", nsp_accuracy=torch.tensor(0.93), steps=1200) == {
        "nsp_accuracy": torch.tensor(0.93), "steps": 1200}
    record("pretraining", nsp_accuracy=0.95, loss=math.inf)
    record("speed", per_batch=[1.5, torch.tensor(2.0)])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"section": "pretraining", "values": {"nsp_accuracy": pytest.approx(0.93), "steps": 1200}}
    assert read(path) == {"pretraining": {"nsp_accuracy": 0.95, "steps": 1200, "loss": "inf"},
                          "speed": {"per_batch": [1.5, 2.0]}}


def test_record_without_results_file_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert record("x", a=1) == {"a": 1}
    assert list(tmp_path.iterdir()) == []


def test_record_rejects_empty_and_unserialisable_values(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "r.jsonl"))
    with pytest.raises(ValueError, match="at least one value"):
        record("x")
    with pytest.raises(ValueError, match="cannot be written as JSON"):
        record("x", model=object())


def test_benchmarks_dir_is_found_from_a_subdirectory_of_the_clone(tmp_path, monkeypatch):
    (tmp_path / "benchmarks" / "results").mkdir(parents=True)
    (tmp_path / "book").mkdir()
    monkeypatch.chdir(tmp_path / "book")  # where run_book.py runs the chapters
    assert benchmarks_dir() == tmp_path / "benchmarks"


def test_benchmarks_dir_outside_a_clone_says_so(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="clone of the repository"):
        benchmarks_dir()
