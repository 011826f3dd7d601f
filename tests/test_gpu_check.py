"""The GPU check (``benchmarks/gpu_check.py``) runs, at smoke scale on a CPU, before a GPU ever runs it.

``--smoke`` runs the four parts through the same code as on a GPU (bench_mfu, bench_inference, bench_distill and
the 300-step distillation, here 6 steps at tiny width with bert-base-uncased's vocabulary) and writes the same
files, into a temporary directory. No timing is asserted.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from helpers import benchmark

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
FILES = ("mfu_cuda_full.json", "inference_cuda.json", "distill_cuda_full.json", "distill300_cuda_full.json")


def gpu_check():
    return benchmark("gpu_check")


def committed_results() -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in RESULTS.iterdir()} if RESULTS.is_dir() else {}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of the whole check (about a minute on 2 cores); its results directory."""
    out = tmp_path_factory.mktemp("gpu_check")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDENTBERT_HOME", str(out / "home"))
        mp.setenv("CUDA_VISIBLE_DEVICES", "")  # restored afterwards (--smoke sets it)
        before = committed_results()
        rc = gpu_check().main(["--smoke", "--results-dir", str(out / "results")])
        assert committed_results() == before, "a smoke run touched benchmarks/results/"
    assert rc == 0
    return out / "results"


def load(results: Path, name: str) -> dict:
    r = json.loads((results / name).read_text())
    assert {"cpu", "threads", "torch", "gpu"} <= set(r["hardware"])
    assert r["command"].startswith("python benchmarks/")
    return r


def test_every_part_writes_its_file(smoke):
    summary = load(smoke, "gpu_check.json")
    assert summary["smoke"] and [p["part"] for p in summary["parts"]] == ["mfu", "inference", "distill", "distill300"]
    assert all(p["status"] == "ok" and p["error"] is None and p["seconds"] > 0 for p in summary["parts"])
    for name in FILES:
        block = load(smoke, name)["gpu_check"]
        assert block["smoke"] and block["command"] == "python benchmarks/gpu_check.py --smoke"
        assert block["budget_s"] > 0 and block["seconds"] > 0
    assert sum(p["budget_s"] for p in summary["parts"]) <= summary["target_s"] == 480


def test_mfu_part(smoke):
    r = load(smoke, "mfu_cuda_full.json")
    assert r["peak_matmul"]["flops_per_s"] > 0 and set(r["results"]) == {"pretraining", "distillation"}
    for row in r["results"].values():
        assert 0 < row["mfu_median"] < 1.5 and 0 < row["mfu_best"] < 1.5
        assert row["flop_counter_ratio"] == pytest.approx(1.0)  # the analytic count is torch's count


def test_inference_part(smoke):
    r = load(smoke, "inference_cuda.json")
    enc = [row for row in r["results"] if row["variant"] == "encoder"]
    assert [row["batch"] for row in enc] == [1, 2]
    assert all(row["speedup"] > 0 and 2.0 <= row["flop_ratio"] < 2.01 for row in enc)
    assert r["passed"] == all(row["speedup"] >= r["goal"]["target"] for row in enc)


def test_distill_part(smoke):
    r = load(smoke, "distill_cuda_full.json")
    assert r["equivalence"]["agree"]
    assert r["ours"]["tokens_per_s_median"] > 0 and r["plain"]["tokens_per_s_median"] > 0


def test_distill300_part(smoke):
    gc = gpu_check()
    r = load(smoke, "distill300_cuda_full.json")
    assert r["smoke"] and r["teacher_is_random"] and "random" in r["teacher"]["weights"]
    assert r["tokenizer"]["vocab_size"] == r["teacher"]["config"]["vocab_size"] == 30522  # bert-base-uncased
    curve = r["loss_curve"]
    assert [x["step"] for x in curve] == list(range(1, gc.SMOKE_STEPS + 1)) and r["steps"] == gc.SMOKE_STEPS
    assert r["all_losses_finite"] and all(math.isfinite(x["loss"]) and x["loss"] > 0 for x in curve)
    assert all({"loss_soft", "loss_hard", "loss_cos", "tokens_per_s"} <= set(x) for x in curve)
    assert [x["step"] for x in r["eval_curve"]] == [0, 3, gc.SMOKE_STEPS]  # before, eval_every, the end
    assert r["tokens_per_s_median"] > 0 and r["tokens_per_s_overall"] > 0 and 0 <= r["padding_fraction"] < 1
    assert r["passed"] == (r["loss_ratio"] < 1.0)


def test_without_a_gpu_it_says_so_and_writes_nothing(monkeypatch, tmp_path, capsys):
    gc = gpu_check()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gc.main(["--results-dir", str(tmp_path)]) == 2
    assert not list(tmp_path.iterdir())
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "GPU" in err and "--smoke" in err


def test_smoke_never_writes_into_the_committed_results(monkeypatch, capsys):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    before = committed_results()
    assert gpu_check().main(["--smoke", "--results-dir", str(RESULTS)]) == 2
    assert committed_results() == before and "--results-dir" in capsys.readouterr().err


def test_a_failing_part_does_not_lose_the_others(monkeypatch, tmp_path):
    gc = gpu_check()

    def boom(ctx):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")

    def fine(ctx):
        gc.write_json({"benchmark": "fine", "command": "python benchmarks/x.py", "hardware": {}}, ctx.path("fine.json"))
        return {}

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(gc, "PARTS", [gc.Part("boom", "boom.json", 1, "fails", boom),
                                      gc.Part("fine", "fine.json", 1, "works", fine)])
    assert gc.main(["--smoke", "--results-dir", str(tmp_path)]) == 1
    assert json.loads((tmp_path / "fine.json").read_text())["gpu_check"]["part"] == "fine"
    assert not (tmp_path / "boom.json").exists()
    parts = {p["part"]: p for p in json.loads((tmp_path / "gpu_check.json").read_text())["parts"]}
    assert parts["boom"]["status"] == "failed" and "OutOfMemoryError" in parts["boom"]["error"]
    assert parts["fine"]["status"] == "ok"
