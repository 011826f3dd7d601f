"""The T and alpha_ce sweep that chapter 6 reads (``benchmarks/results/distill_sweep_cpu.json``): every setting over
three or more seeds, and every mean, std, min and max equal to those of its per-seed values, so that a file edited
by hand (a value changed, a seed dropped) fails here. The script itself is checked where it needs no training."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from pathlib import Path

import pytest
from helpers import benchmark

from studentbert.triple_loss import DistillationLossWeights

ROOT = Path(__file__).resolve().parents[1]
PATH = ROOT / "benchmarks" / "results" / "distill_sweep_cpu.json"
METRICS = ("mlm_accuracy", "mlm_loss", "kl", "top1_agreement")


def sweep_script():
    return benchmark("sweep_distillation")


@pytest.fixture(scope="module")
def sweep() -> dict:
    assert PATH.is_file(), f"{PATH} is missing: chapter 6 reads it (python benchmarks/sweep_distillation.py)"
    return json.loads(PATH.read_text())


def test_every_setting_has_three_or_more_seeds_and_its_statistics_are_those_of_its_runs(sweep):
    seeds = sweep["seeds"]
    assert len(seeds) >= 3 and len(set(seeds)) == len(seeds)
    assert isinstance(sweep["steps"], int) and sweep["steps"] >= 1 and sweep["train_config"]["max_steps"] == sweep["steps"]
    for rows in sweep["sweeps"].values():
        for row in rows:
            runs = row["runs"]
            assert [r["seed"] for r in runs] == seeds, row["name"]
            for metric in METRICS:
                values = [r[metric] for r in runs]
                assert all(math.isfinite(v) for v in values)
                s = row["summary"][metric]
                assert s["n"] == len(values) >= 3
                assert s["min"] == min(values) and s["max"] == max(values), (row["name"], metric)
                assert math.isclose(s["mean"], statistics.fmean(values), rel_tol=1e-12, abs_tol=1e-15), (row["name"], metric)
                assert math.isclose(s["std"], statistics.stdev(values), rel_tol=1e-9, abs_tol=1e-15), (row["name"], metric)
            assert all(0 <= r["mlm_accuracy"] <= 1 and 0 <= r["top1_agreement"] <= 1 and r["kl"] >= 0 for r in runs)


def test_the_sweeps_are_those_the_chapter_describes(sweep):
    default = dataclasses.asdict(DistillationLossWeights())
    by_sweep = {name: {row["name"]: row for row in rows} for name, rows in sweep["sweeps"].items()}
    assert set(by_sweep) == {"temperature", "alpha_ce"}
    temps = [row["value"] for row in sweep["sweeps"]["temperature"]]
    assert temps == [1, 2, 4, 8]
    alphas = [row["value"] for row in sweep["sweeps"]["alpha_ce"]]
    assert len(alphas) >= 3 and 0 in alphas and default["alpha_ce"] in alphas
    for swept, key in (("temperature", "temperature"), ("alpha_ce", "alpha_ce")):
        for row in sweep["sweeps"][swept]:
            assert row["weights"] == {**default, key: row["value"]}, row["name"]  # one weight changed at a time
    # the default setting is in both sweeps and is the same runs
    t2 = next(r for r in sweep["sweeps"]["temperature"] if r["value"] == default["temperature"])
    a5 = next(r for r in sweep["sweeps"]["alpha_ce"] if r["value"] == default["alpha_ce"])
    assert t2["runs"] == a5["runs"]
    assert sweep["runs"] == (len(temps) + len(alphas) - 1) * len(sweep["seeds"])  # the default setting run once
    assert sweep["command"].startswith("python benchmarks/sweep_distillation.py") and sweep["profile"] == "tiny"
    assert sweep["busy_cores_at_start"] >= 0 and sweep["hardware"]["cpu_count"] >= 1
    ref = sweep["reference"]
    assert 0 < ref["teacher"]["mlm_accuracy"] <= 1 and set(METRICS) <= set(ref["student_at_init"])


def test_summary_is_mean_sample_std_min_max():
    s = sweep_script().summarize([0.5, 0.7, 0.6])
    assert math.isclose(s["mean"], 0.6) and math.isclose(s["std"], 0.1) and (s["min"], s["max"], s["n"]) == (0.5, 0.7, 3)


@pytest.mark.parametrize("argv, message", [
    (["--seeds", "0", "1"], "three or more seeds"),
    (["--settings", "T=3"], "unknown settings ['T=3']"),
    (["--seeds", "0", "0", "1", "--json", ""], "repeats a seed"),
    (["--steps", "0", "--json", ""], "--steps must be a positive integer"),
])
def test_the_script_refuses_a_sweep_the_results_file_cannot_hold(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        sweep_script().main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
