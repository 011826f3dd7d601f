"""The experiments of chapter 7: teacher vs distilled student vs no distillation (:func:`compare`), and
DistilBERT's ablation (:func:`ablation`), on the profile's downstream task.

Three ways to train a student classifier are compared:

* **task-agnostic distillation, then task-specific distillation**: the distilled student is fine-tuned on
  ``alpha * CE(labels) + (1 - alpha) * T² KL(teacher || student)`` against the *fine-tuned* teacher
  (:class:`studentbert.finetune.TaskDistillationLoss`);
* **task-agnostic distillation, then plain fine-tuning** (the labels only), as DistilBERT on GLUE;
* **no distillation**: the same architecture from a random initialisation, pretrained with masked-LM only
  for the same number of steps, then fine-tuned on the labels.

:func:`ablation` repeats the DistilBERT paper's ablation (Sanh et al., 2019, Table 4) at this book's scale:
remove one term of the triple loss, or the initialisation from the teacher, and measure what it costs on the
downstream task. Every run is cached in its own folder: a rerun skips finished runs and resumes interrupted ones.
The stages get their inputs here: the profile's corpus (:func:`studentbert.data.profile_corpus`) and task
(:func:`studentbert.data.task_datasets`).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .checkpoint import RESULTS
from .data import bag_of_words_baseline, profile_corpus, task_datasets
from .distill import distill
from .evaluation import majority_baseline
from .finetune import finetune
from .hf import check_model_dir
from .profiles import Profile
from .speed import inference_speed
from .triple_loss import DistillationLossWeights


def _run_distill(profile: Profile, teacher_dir: Path, output_dir: Path, weights: DistillationLossWeights,
                 init: str) -> Path:
    """``distill`` on the profile's corpus into ``output_dir`` unless it already finished there (it resumes
    otherwise)."""
    if (output_dir / "model" / "config.json").is_file() and (output_dir / RESULTS).is_file():
        return output_dir / "model"
    documents, heldout = profile_corpus(profile)
    return distill(profile, teacher_dir, output_dir, documents=documents, heldout=heldout, weights=weights, init=init)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def task_classifiers(profile: Profile, teacher_dir: str | Path, student_dir: str | Path, output_dir: str | Path,
                     alpha: float = 0.5, temperature: float = 2.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pretrained teacher fine-tuned on the profile's task, and the distilled student task-distilled from it.

    These are :func:`compare`'s first two rows, in the same folders of ``output_dir`` (``teacher/``,
    ``student-task-distilled/``): called with :func:`compare`'s ``output_dir``, it returns those runs (each
    :func:`~studentbert.finetune.finetune` result, with ``model_dir`` and ``accuracy``) without training
    again. Chapter 11 and ``benchmarks/bench_deploy.py`` deploy these two classifiers.
    """
    train, test = task_datasets(profile)
    ft, max_length, output_dir = profile.finetune, profile.task.max_length, Path(output_dir)
    teacher = finetune(teacher_dir, train, test, output_dir / "teacher", ft, max_length, alpha=alpha,
                       temperature=temperature)
    student = finetune(student_dir, train, test, output_dir / "student-task-distilled", ft, max_length,
                       teacher_dir=teacher["model_dir"], alpha=alpha, temperature=temperature)
    return teacher, student


def compare(
    profile: Profile,
    teacher_dir: str | Path,
    student_dir: str | Path,
    output_dir: str | Path,
    alpha: float = 0.5,
    temperature: float = 2.0,
    speed_repeats: int = 20,
    no_distillation: bool = True,
) -> dict[str, Any]:
    """Teacher vs distilled student vs the same student trained without distillation, on the profile's task.

    The rows (every run cached in its own folder of ``output_dir``; a rerun skips finished runs and resumes
    interrupted ones):

    * ``teacher``: the pretrained teacher (``teacher_dir``) fine-tuned on the labels (``teacher/``);
    * ``distilled+task-distillation``: the task-agnostic distilled student (``student_dir``) fine-tuned with
      task-specific distillation from the fine-tuned teacher, ``alpha * CE + (1 - alpha) T² KL``
      (``student-task-distilled/``);
    * ``distilled``: the same student fine-tuned on the labels only (``student-finetuned/``);
    * ``no-distillation``: the student architecture from a random initialisation, pretrained with masked-LM
      only (the ``no-distillation`` row of :data:`CONTROL_ROWS`: ``alpha_ce=0, alpha_mlm=1, alpha_cos=0``,
      ``init="random"``; the teacher is loaded but contributes nothing) for ``profile.distill.max_steps`` steps
      on the same corpus, then fine-tuned on the labels (``mlm-student/``, ``student-no-distillation/``).
      ``no_distillation=False`` leaves this row out (chapter 7's ``tiny`` profile reads it, over three seeds,
      from ``benchmarks/bench_task_seeds.py``'s results, and saves the pretraining run).

    Every fine-tuning uses ``profile.finetune`` and ``profile.task.max_length``. Latency is measured on a CPU
    for the teacher and the student architecture (one measurement serves the three student rows: same
    architecture, same cost), side by side (:func:`~studentbert.speed.inference_speed`).

    Returns (and writes to ``output_dir/compare.json``): ``rows`` (``name``, ``description``, ``accuracy``,
    ``accuracy_retained_pct`` (of the teacher's), ``parameters``, ``latency_ms_batch1``, ``latency_ms_batch32``,
    ``speedup_batch1``, ``speedup_batch32``, ``train_seconds``, ``model_dir``), ``baselines``, ``speed`` and
    ``settings``.
    """
    output_dir = Path(output_dir)
    teacher_dir, student_dir = Path(teacher_dir), Path(student_dir)
    teacher_config = check_model_dir(teacher_dir, "teacher")
    if teacher_config.model_type != "bert":
        raise ValueError(f"The teacher directory {teacher_dir} holds a {teacher_config.model_type}, not a BERT.")
    student_config = check_model_dir(student_dir, "student")
    if student_config.model_type != "distilbert":
        raise ValueError(f"The student directory {student_dir} holds a {student_config.model_type}, not a DistilBERT.")
    train, test = task_datasets(profile)
    ft, max_length = profile.finetune, profile.task.max_length

    def run(folder: str, model_dir: Path, teacher: Path | None = None) -> dict:
        return finetune(model_dir, train, test, output_dir / folder, ft, max_length, teacher_dir=teacher,
                        alpha=alpha, temperature=temperature)

    teacher, task_distilled = task_classifiers(profile, teacher_dir, student_dir, output_dir, alpha, temperature)
    teacher_classifier = Path(teacher["model_dir"])
    distilled = run("student-finetuned", student_dir)
    if no_distillation:
        _, _, changes, init = next(row for row in CONTROL_ROWS if row[0] == "no-distillation")
        mlm_weights = dataclasses.replace(DistillationLossWeights(), **changes)
        mlm_student = _run_distill(profile, teacher_dir, output_dir / "mlm-student", mlm_weights, init)
        undistilled = run("student-no-distillation", mlm_student)

    speed = inference_speed({"teacher": teacher_classifier, "student": Path(task_distilled["model_dir"])},
                            batch_sizes=(1, 32), seq_len=max_length, repeats=speed_repeats, warmup=min(3, speed_repeats))
    student_source = _read_json(student_dir.parent / RESULTS)
    rows_spec = [
        ("teacher", "teacher (BERT), fine-tuned", teacher, "teacher"),
        ("distilled+task-distillation", "distilled student, fine-tuned with task-specific distillation",
         task_distilled, "student"),
        ("distilled", "distilled student, fine-tuned on the labels", distilled, "student"),
    ]
    if no_distillation:
        rows_spec.append(("no-distillation", "same student, random init + MLM pretraining only, fine-tuned on the "
                          "labels", undistilled, "student"))
    t_speed = speed["teacher"]
    rows = []
    for name, description, result, arch in rows_spec:
        s = speed[arch]
        rows.append({
            "name": name, "description": description, "accuracy": result["accuracy"],
            "accuracy_retained_pct": 100.0 * result["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else None,
            "parameters": s["parameters"], "num_layers": s["num_layers"],
            "latency_ms_batch1": s["latency_ms_batch1"], "latency_ms_batch32": s["latency_ms_batch32"],
            "speedup_batch1": t_speed["latency_ms_batch1"] / s["latency_ms_batch1"],
            "speedup_batch32": t_speed["latency_ms_batch32"] / s["latency_ms_batch32"],
            "train_seconds": result["train_seconds"], "model_dir": result["model_dir"],
        })
    baselines: dict[str, float] = {"majority_class": majority_baseline(test["label"])}
    if profile.task.name == "generated-sentiment":
        pairs = list(zip(train["text"], train["label"], strict=True)), list(zip(test["text"], test["label"], strict=True))
        baselines["bag_of_words"] = bag_of_words_baseline(*pairs)
    summary = {
        "rows": rows,
        "baselines": baselines,
        "speed": speed,
        "mlm_student_pretraining": _read_json(output_dir / "mlm-student" / RESULTS),
        "settings": {
            "profile": profile.name, "task": profile.task.name, "num_train": len(train), "num_test": len(test),
            "teacher_dir": str(teacher_dir), "student_dir": str(student_dir), "alpha": alpha,
            "temperature": temperature, "finetune": dataclasses.asdict(ft),
            "distill_steps_no_distillation": profile.distill.max_steps if no_distillation else None,
            "distill_steps_student": student_source.get("steps"),
        },
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "compare.json").write_text(json.dumps(summary, indent=2))
    return summary


# ----------------------------------------------------------------------------------------------------------
# the ablation

ABLATION_ROWS: tuple[tuple[str, str, dict[str, float], str], ...] = (
    ("triple-loss", "Triple loss + teacher init (the full recipe)", {}, "teacher"),
    ("no-ce", "triple loss without L_ce", {"alpha_ce": 0.0}, "teacher"),
    ("no-cos", "triple loss without L_cos", {"alpha_cos": 0.0}, "teacher"),
    ("no-mlm", "triple loss without L_mlm", {"alpha_mlm": 0.0}, "teacher"),
    ("random-init", "Triple loss + random weights initialization", {}, "random"),
)
"""``(slug, description, changes to the default DistillationLossWeights, init)`` of each ablation row:
Sanh et al. (2019), Table 4, plus the full recipe as the reference."""

PAPER_TABLE_4: dict[str, float] = {"no-ce": -2.96, "no-cos": -1.46, "no-mlm": -0.31, "random-init": -3.69}
"""Change of the GLUE macro-score (points) against the full recipe for each ablation row, as Sanh et al. (2019)
report it in their Table 4."""

CONTROL_ROWS: tuple[tuple[str, str, dict[str, float], str], ...] = (
    ("mlm-only", "L_mlm only + teacher init (the initialisation without the distillation losses)",
     {"alpha_ce": 0.0, "alpha_mlm": 1.0, "alpha_cos": 0.0}, "teacher"),
    ("no-distillation", "L_mlm only + random init (no teacher at all)",
     {"alpha_ce": 0.0, "alpha_mlm": 1.0, "alpha_cos": 0.0}, "random"),
)
"""Rows that :func:`ablation` runs when asked by name (``rows=``): two controls that separate what the teacher's
*weights* give (``mlm-only``: initialised from the teacher, then masked-LM pretraining alone) from what the
distillation *losses* give (the ``triple-loss`` row), and the student with no teacher at all."""


def ablation(
    profile: Profile,
    teacher_dir: str | Path,
    output_dir: str | Path,
    steps: int | None = None,
    rows: Sequence[str] | None = None,
    on_task: bool = True,
    reference_student: str | Path | None = None,
) -> list[dict[str, Any]]:
    """The DistilBERT ablation (Sanh et al., 2019, Table 4) on the profile's task.

    For every row of :data:`ABLATION_ROWS` (or the slugs in ``rows``, which may also name
    :data:`CONTROL_ROWS`): task-agnostic distillation of
    ``teacher_dir`` with those loss weights and that initialisation, for ``steps`` steps (default
    ``profile.distill.max_steps``), into ``output_dir/<slug>/distill``; then fine-tuning on the labels only,
    as the paper evaluates on GLUE, into ``output_dir/<slug>/finetune``. Finished runs are reused.
    With ``on_task=False`` the rows stop after distillation: what is compared is then the student's held-out
    masked-LM accuracy, which distillation optimises directly and which no fine-tuning noise blurs.
    ``reference_student``: a student already distilled with the full recipe for ``profile.distill.max_steps``
    steps (chapter 6's): when ``steps`` is that many, it is the ``triple-loss`` row, not distilled again.

    Returns (and writes to ``output_dir/ablation.json``) one dict a row: ``name``, ``description``,
    ``weights``, ``init``, ``steps``, ``accuracy`` (None without ``on_task``), ``delta_vs_triple_loss``
    (task accuracy points relative to the full recipe, when it is among the rows and ``on_task``), the
    student's held-out masked-LM loss and accuracy after distillation and ``mlm_delta_vs_triple_loss`` (its
    change in points), and the run directories.
    """
    output_dir = Path(output_dir)
    teacher_dir = Path(teacher_dir)
    config = check_model_dir(teacher_dir, "teacher")
    if config.model_type != "bert":
        raise ValueError(f"The teacher directory {teacher_dir} holds a {config.model_type}, not a BERT.")
    steps = profile.distill.max_steps if steps is None else steps
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    known = {slug: (description, changes, init) for slug, description, changes, init in ABLATION_ROWS + CONTROL_ROWS}
    selected = [slug for slug, *_ in ABLATION_ROWS] if rows is None else list(rows)
    unknown = [r for r in selected if r not in known]
    if unknown:
        raise ValueError(f"Unknown ablation rows {unknown}; choose among {list(known)}.")
    distill_config = dataclasses.replace(
        profile.distill, max_steps=steps,
        eval_every=min(profile.distill.eval_every, steps) if profile.distill.eval_every else 0,
        save_every=min(profile.distill.save_every, steps) if profile.distill.save_every else 0)
    short = profile.replace(distill=distill_config)
    train, test = task_datasets(profile)
    results = []
    for slug in selected:
        description, changes, init = known[slug]
        weights = dataclasses.replace(DistillationLossWeights(), **changes)
        reuse = slug == "triple-loss" and reference_student is not None and steps == profile.distill.max_steps
        if reuse:
            student = Path(reference_student)
            (output_dir / slug).mkdir(parents=True, exist_ok=True)
            shutil.copy(student.parent / RESULTS, output_dir / slug / "distill-results.json")
        else:
            student = _run_distill(short, teacher_dir, output_dir / slug / "distill", weights, init)
        ft = (finetune(student, train, test, output_dir / slug / "finetune", profile.finetune,
                       profile.task.max_length) if on_task else {})
        distilled = _read_json(output_dir / slug / ("distill-results.json" if reuse else f"distill/{RESULTS}"))
        results.append({
            "name": slug, "description": description, "weights": dataclasses.asdict(weights), "init": init,
            "steps": steps, "accuracy": ft.get("accuracy"),
            "heldout_mlm_loss": distilled.get("heldout_student_mlm_loss"),
            "heldout_mlm_accuracy": distilled.get("heldout_student_mlm_accuracy"),
            "distill_seconds": distilled.get("seconds"), "finetune_seconds": ft.get("train_seconds"),
            "student_dir": str(student), "model_dir": ft.get("model_dir"),
        })
    reference = next((r for r in results if r["name"] == "triple-loss"), None)
    for r in results:
        r["delta_vs_triple_loss"] = (100.0 * (r["accuracy"] - reference["accuracy"])
                                     if reference is not None and on_task else None)
        known_mlm = reference is not None and None not in (r["heldout_mlm_accuracy"], reference["heldout_mlm_accuracy"])
        r["mlm_delta_vs_triple_loss"] = (100.0 * (r["heldout_mlm_accuracy"] - reference["heldout_mlm_accuracy"])
                                         if known_mlm else None)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "ablation.json").write_text(json.dumps(results, indent=2))
    return results


# ----------------------------------------------------------------------------------------------------------
# the seeds study (benchmarks/bench_task_seeds.py): its settings, so that a chapter can tell whether it applies


def seeds_study_settings(profile: Profile) -> dict[str, Any]:
    """What a seeds study's numbers depend on, for ``profile``: the corpus and tokenizer (``data``), the
    teacher's shape, the task, the distillation steps of every row, and the fine-tuning (its seed aside: the
    study sets it). ``benchmarks/bench_task_seeds.py`` writes it into its results file as ``profile_settings``."""
    return {"data": dataclasses.asdict(profile.data), "teacher": dataclasses.asdict(profile.teacher),
            "task": dataclasses.asdict(profile.task), "distill_steps": profile.distill.max_steps,
            "finetune": {**dataclasses.asdict(profile.finetune), "seed": None}}


def seeds_study_differences(study: dict[str, Any], profile: Profile) -> list[str]:
    """The settings of :func:`seeds_study_settings` in which the results file ``study`` was made otherwise than
    ``profile`` would make it (empty: its numbers are this profile's)."""
    made = study.get("profile_settings") or {}
    return [key for key, value in seeds_study_settings(profile).items() if made.get(key) != value]
