"""``benchmarks/bench_task_seeds.py``: the seeds study's bookkeeping (which run feeds which row, the paired
changes against the triple loss, the statistics), with the training replaced by fakes whose accuracies are known."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path

import datasets
import pytest
from helpers import benchmark

from studentbert import get_profile
from studentbert.experiments import ABLATION_ROWS, CONTROL_ROWS, seeds_study_differences

SLUGS = [slug for slug, *_ in ABLATION_ROWS + CONTROL_ROWS]


def known_accuracy(name: str, seed: int) -> float:
    """A distinct, known accuracy for every (row, seed)."""
    return 0.5 + 0.01 * (["teacher", "task-distilled", *SLUGS].index(name)) + 0.003 * seed


@pytest.fixture
def study(monkeypatch, tmp_path):
    bench = benchmark("bench_task_seeds")
    calls = []

    def fake_finetune(model_dir, train, test, output_dir, config, max_length, teacher_dir=None, **kwargs):
        name = Path(output_dir).name  # "teacher" or "task-distilled"
        calls.append((name, config.seed, str(model_dir), teacher_dir))
        return {"accuracy": known_accuracy(name, config.seed), "model_dir": f"{output_dir}/model"}

    def fake_ablation(profile, teacher_dir, output_dir, steps, rows):
        assert profile.task.negated_frames == 0.15 and steps == 7 and list(rows) == SLUGS
        return [{"name": r, "accuracy": known_accuracy(r, profile.distill.seed), "model_dir": f"{output_dir}/{r}",
                 "student_dir": f"{output_dir}/{r}/student", "heldout_mlm_accuracy": 0.4} for r in rows]

    small = datasets.Dataset.from_dict({"text": ["The soup was good.", "The soup was bad."] * 4, "label": [1, 0] * 4})
    monkeypatch.setattr(bench, "finetune", fake_finetune)
    monkeypatch.setattr(bench, "ablation", fake_ablation)
    monkeypatch.setattr(bench, "task_datasets", lambda profile: (small, small))
    monkeypatch.setattr(bench, "accuracy_by_form", lambda model_dir, test, max_length: {"plain": 1.0})
    out = tmp_path / "seeds.json"
    result = bench.main(["--seeds", "0", "1", "2", "--steps", "7", "--teacher", str(tmp_path), "--work",
                         str(tmp_path / "work"), "--json", str(out)])
    return result, json.loads(out.read_text()), calls


def test_every_row_has_its_runs_statistics_and_paired_change(study):
    result, written, calls = study
    assert written["rows"] == result["rows"]
    assert set(result["rows"]) == {"teacher", "triple-loss+task-distillation", *SLUGS}
    for name, row in result["rows"].items():
        key = "task-distilled" if name == "triple-loss+task-distillation" else name
        expected = [known_accuracy(key, s) for s in (0, 1, 2)]
        assert row["accuracies"] == expected and row["mean"] == pytest.approx(statistics.fmean(expected))
        assert row["std"] == pytest.approx(statistics.stdev(expected))
        deltas = [100 * (a - known_accuracy("triple-loss", s)) for s, a in enumerate(expected)]
        assert row["delta_vs_triple_loss_points"]["per_seed"] == pytest.approx(deltas)
    assert result["rows"]["triple-loss"]["delta_vs_triple_loss_points"]["mean"] == 0.0
    assert result["rows"]["no-ce"]["paper_table_4_points"] == -2.96 and result["rows"]["mlm-only"]["paper_table_4_points"] is None


def test_each_seed_fine_tunes_its_teacher_and_task_distils_the_triple_loss_student_from_it(study):
    _, _, calls = study
    teachers = [c for c in calls if c[0] == "teacher"]
    distilled = [c for c in calls if c[0] == "task-distilled"]
    assert [c[1] for c in teachers] == [0, 1, 2] and [c[1] for c in distilled] == [0, 1, 2]
    for seed, (_, _, student, teacher_dir) in enumerate(distilled):
        assert student.endswith(f"seed-{seed}/ablation/triple-loss/student")
        assert teacher_dir == f"{Path(student).parents[2]}/teacher/model"


def test_the_committed_study_is_the_tiny_profiles_and_shows_a_task_that_discriminates():
    """Chapter 7 reads ``results/task_seeds_cpu.json`` only when it was made with the tiny profile's settings
    (:func:`~studentbert.experiments.seeds_study_differences`); otherwise it falls back to one live seed. So a
    change of the profile that is not followed by a new study fails here, not silently in the book."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "task_seeds_cpu.json"
    assert path.is_file(), f"{path} is missing: chapter 7 reads it (python benchmarks/bench_task_seeds.py)"
    study = json.loads(path.read_text())
    tiny = get_profile("tiny")
    assert seeds_study_differences(study, tiny) == []
    changed = tiny.replace(task=dataclasses.replace(tiny.task, num_train=tiny.task.num_train + 1))
    assert seeds_study_differences(study, changed) == ["task"]
    seeds = study["settings"]["seeds"]
    assert len(seeds) >= 3 and len(set(seeds)) == len(seeds)
    rows = study["rows"]
    assert set(rows) == {"teacher", "triple-loss+task-distillation", *SLUGS}  # the controls included
    for row in rows.values():
        assert len(row["accuracies"]) == len(seeds) and row["min"] <= row["mean"] <= row["max"]
    teacher = rows["teacher"]
    assert 0.80 <= teacher["min"] and teacher["max"] <= 0.92  # every seed's teacher, well below the rule's 1.0
    assert study["baselines"]["rule"] == 1.0 and study["baselines"]["bag_of_words"] <= teacher["min"] - 0.10
