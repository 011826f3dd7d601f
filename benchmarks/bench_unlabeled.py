"""Unlabelled in-domain text in task distillation: does the teacher's labelling of text no person labelled pay?

On the generated sentiment task (:func:`studentbert.data.sentiment.generate_sentiment`: negation and contrast
decide the label) with a small labelled set, a tiny pretrained teacher (the tiny profile's,
:func:`studentbert.artifacts.pretrained_teacher`) is fine-tuned on the labelled set; a smaller DistilBERT student
initialised from its layers (``student_layers``; :func:`studentbert.student_init.make_student`) is then trained
three ways, each with the same steps, batch and learning rate, for every seed:

* ``labels_only``: fine-tuned on the labelled set (cross-entropy);
* ``distilled``: task-distilled on the labelled set (``alpha * CE + (1 - alpha) * T² KL``);
* ``distilled_unlabeled``: task-distilled with the unlabelled texts added to the training rows, where the
  teacher's soft targets are the only loss (:func:`studentbert.finetune.mixed_distillation_loss`).

The held-out test set (disjoint from both training sets: the generated texts are deduplicated before they are
split) is evaluated once, at the end of each run; no run is selected on it. The seed sets the student's head,
dropout and the order of the training rows; the data and the teacher are the same for every seed. Writes the
per-seed accuracies, their mean, standard deviation and range, the teacher's accuracy, the sizes and settings,
and whether the student with the unlabelled text beat both others on the mean (``passed``).

    python benchmarks/bench_unlabeled.py      # results/unlabeled_cpu.json (~12 min on 2 cores, one thread)
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from benchlib import command_line, hardware, spread, write_json

from studentbert.data.sentiment import generate_sentiment
from studentbert.finetune import finetune
from studentbert.training import TrainConfig

CONDITIONS = ("labels_only", "distilled", "distilled_unlabeled")


def split_task(num_labelled: int, num_unlabeled: int, num_test: int, seed: int) -> tuple[list, list, list]:
    """``(labelled, unlabelled texts, test)`` of distinct generated reviews (no text in two sets)."""
    need, factor = num_labelled + num_unlabeled + num_test, 1.3
    while True:
        pool = list(dict(generate_sentiment(int(need * factor), seed=seed)).items())  # deduplicated, in order
        if len(pool) >= need:
            break
        factor *= 1.5
    test, labelled = pool[:num_test], pool[num_test:num_test + num_labelled]
    unlabeled = [t for t, _ in pool[num_test + num_labelled:need]]
    return labelled, unlabeled, test


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--labelled", type=int, default=300, help="labelled training examples")
    p.add_argument("--unlabeled", type=int, default=5000, help="unlabelled training texts")
    p.add_argument("--test", type=int, default=1000, help="held-out test examples")
    p.add_argument("--data-seed", type=int, default=7, help="seed of the generated texts")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="the students' seeds")
    p.add_argument("--teacher", type=Path, help="a pretrained BERT directory (None: the tiny profile's teacher)")
    p.add_argument("--teacher-steps", type=int, default=1000, help="fine-tuning steps of the teacher")
    p.add_argument("--steps", type=int, default=1000, help="training steps of every student run")
    p.add_argument("--student-layers", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--learning-rate", type=float, default=5e-4)
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the hard loss on labelled rows")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--max-length", type=int, default=48)
    p.add_argument("--threads", type=int, default=1, help="torch threads (tiny models: one avoids sync stalls)")
    p.add_argument("--work", type=Path, help="where the runs go (None: a temporary directory)")
    p.add_argument("--json", help="output file ('' to skip; default results/unlabeled_cpu.json)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    labelled, unlabeled, test = split_task(args.labelled, args.unlabeled, args.test, args.data_seed)
    if args.teacher is None:
        from studentbert.artifacts import pretrained_teacher

        args.teacher = pretrained_teacher("tiny")
    tmp = tempfile.TemporaryDirectory() if args.work is None else None
    work = Path(tmp.name) if tmp is not None else args.work

    def config(steps: int, seed: int) -> TrainConfig:
        return TrainConfig(max_steps=steps, batch_size=args.batch_size, learning_rate=args.learning_rate,
                           warmup_ratio=0.1, eval_every=0, save_every=0, log_every=max(1, steps // 10), seed=seed)

    teacher = finetune(args.teacher, labelled, test, work / "teacher-ft", config(args.teacher_steps, 0),
                       args.max_length)
    print(f"teacher ({teacher['num_layers']} layers) fine-tuned on {len(labelled)} labelled: test accuracy {teacher['accuracy']:.4f} "
          f"({teacher['train_seconds']:.0f} s)")
    runs: dict[str, list[dict]] = {c: [] for c in CONDITIONS}
    for seed in args.seeds:
        for condition in CONDITIONS:
            extra = {} if condition == "labels_only" else {
                "teacher_dir": teacher["model_dir"], "alpha": args.alpha, "temperature": args.temperature}
            if condition == "distilled_unlabeled":
                extra["unlabeled"] = unlabeled
            r = finetune(teacher["model_dir"], labelled, test, work / f"{condition}-{seed}", config(args.steps, seed),
                         args.max_length, student_layers=args.student_layers, **extra)
            runs[condition].append({"seed": seed, "accuracy": r["accuracy"], "seconds": r["train_seconds"],
                                    "train_loss": r["train_loss"]})
            print(f"seed {seed} {condition:20s} accuracy {r['accuracy']:.4f} ({r['train_seconds']:.0f} s)")
    stats = {c: {**spread([r["accuracy"] for r in rows]), "accuracies": [r["accuracy"] for r in rows],
                 "runs": rows} for c, rows in runs.items()}
    best_other = max(stats["labels_only"]["mean"], stats["distilled"]["mean"])
    with_text = stats["distilled_unlabeled"]
    wins = sum(c > max(a, b) for a, b, c in zip(*(stats[k]["accuracies"] for k in CONDITIONS), strict=True))
    result = {
        "benchmark": "unlabeled",
        "command": command_line("bench_unlabeled.py", argv),
        "hardware": hardware("cpu"),
        "task": "generated-sentiment (studentbert.data.sentiment.generate_sentiment)",
        "sizes": {"labelled": len(labelled), "unlabeled": len(unlabeled), "test": len(test)},
        "settings": {"teacher": str(args.teacher), "teacher_layers": teacher["num_layers"], "student_layers": args.student_layers,
                     "student_init": "the fine-tuned teacher's layers (make_student, init='teacher')",
                     "teacher_steps": args.teacher_steps, "steps": args.steps, "batch_size": args.batch_size,
                     "learning_rate": args.learning_rate, "alpha": args.alpha, "temperature": args.temperature,
                     "max_length": args.max_length, "seeds": args.seeds, "data_seed": args.data_seed,
                     "torch_threads": torch.get_num_threads()},
        "teacher": {"accuracy": teacher["accuracy"], "seconds": teacher["train_seconds"]},
        "conditions": stats,
        "goal": {"target": "distilled_unlabeled mean accuracy > the labels_only and distilled means",
                 "direction": "higher"},
        "passed": with_text["mean"] > best_other,
        "margin_over_best_other": with_text["mean"] - best_other,
        "seeds_where_unlabeled_beats_both": wins,
        "wall_seconds": time.perf_counter() - t_start,
    }
    print(f"\n{'condition':22s} {'mean':>7s} {'std':>7s} {'min':>7s} {'max':>7s}  per seed")
    for c in CONDITIONS:
        s = stats[c]
        print(f"{c:22s} {s['mean']:7.4f} {s['std']:7.4f} {s['min']:7.4f} {s['max']:7.4f}  "
              + " ".join(f"{a:.4f}" for a in s["accuracies"]))
    print(f"{'teacher':22s} {teacher['accuracy']:7.4f}")
    print(f"goal: {result['goal']['target']}: {'met' if result['passed'] else 'NOT met'} "
          f"(margin {result['margin_over_best_other']:+.4f}; beats both in {wins} of {len(args.seeds)} seeds); "
          f"{result['wall_seconds']:.0f} s in all")
    write_json(result, args.json, "unlabeled_cpu.json")
    if tmp is not None:
        tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
