"""Chapter 7's comparison and ablation over several seeds, on the generated task with denying frames.

The tiny profile's task with ``task.negated_frames = 0.15`` (:func:`studentbert.data.sentiment.generate_sentiment`):
15% of the reviews sit inside a frame that denies them (``Anna did not think that the soup was good.``), so the
scope of each *not* decides the label and the tiny teacher no longer solves the task. One pretrained teacher
(the tiny profile's, :func:`studentbert.artifacts.pretrained_teacher`, or ``--teacher``); for every seed, which
sets the distillation's masking and batch order and the fine-tuning's head and batch order:

* ``teacher``: the teacher fine-tuned on the labels;
* every row of :data:`studentbert.experiments.ABLATION_ROWS` (the triple loss, then without L_ce, without L_cos,
  without L_mlm, and with a random initialisation) and of :data:`~studentbert.experiments.CONTROL_ROWS`
  (``mlm-only``: initialised from the teacher, pretrained with L_mlm alone; ``no-distillation``: random init,
  L_mlm alone), each distilled for ``--steps`` steps on the profile's corpus and then fine-tuned on the labels
  (:func:`studentbert.experiments.ablation`);
* ``triple-loss+task-distillation``: the triple-loss student fine-tuned with task-specific distillation from
  that seed's fine-tuned teacher (``alpha * CE + (1 - alpha) T² KL``).

Every run is cached under ``--work`` (a rerun reuses finished runs), so seeds can run as separate processes
and a last call with all the seeds only collects them. Writes, for every row, the accuracy per seed, mean, std
and range, the change against the triple loss per seed (paired: same seed), the accuracy per review form, and
the baselines (majority class, bag of words with n <= 1 and n <= 2, the rule).

    python benchmarks/bench_task_seeds.py --work /tmp/task-seeds     # results/task_seeds_cpu.json
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
import transformers
from benchlib import command_line, hardware, spread, write_json

from studentbert import get_profile
from studentbert.data.sentiment import bag_of_words_baseline, review_form, sentiment_rule, task_datasets
from studentbert.evaluation import majority_baseline
from studentbert.experiments import ABLATION_ROWS, CONTROL_ROWS, PAPER_TABLE_4, ablation, seeds_study_settings
from studentbert.finetune import finetune
from studentbert.report_card import predict
from studentbert.speed import busy_cores


def accuracy_by_form(model_dir: str | Path, test, max_length: int) -> dict[str, float]:
    """Test accuracy of a classifier on each review form (:func:`~studentbert.data.sentiment.review_form`)."""
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    with torch.inference_mode():
        predictions = predict(model, test, tokenizer, max_length)
    right: dict[str, list[bool]] = defaultdict(list)
    for text, label, p in zip(test["text"], test["label"], predictions, strict=True):
        right[review_form(text)].append(p == label)
    return {form: sum(r) / len(r) for form, r in sorted(right.items())}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--steps", type=int, help="distillation steps of every row (default: the tiny profile's)")
    p.add_argument("--finetune-steps", type=int, help="fine-tuning steps of every run (default: the tiny profile's)")
    p.add_argument("--negated-frames", type=float, help="share of reviews in a denying frame (default: the profile's)")
    p.add_argument("--teacher", type=Path, help="a pretrained BERT directory (None: the tiny profile's teacher)")
    p.add_argument("--alpha", type=float, default=0.5, help="task distillation: weight of the labels' CE")
    p.add_argument("--temperature", type=float, default=2.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--work", type=Path, required=True, help="where the runs go (reused by a rerun)")
    p.add_argument("--json", help="output file ('' to skip; default results/task_seeds_cpu.json)")
    args = p.parse_args(argv)

    torch.set_num_threads(args.threads)
    t_start, busy = time.perf_counter(), busy_cores(1.0)
    profile = get_profile("tiny")
    if args.negated_frames is not None:
        profile = profile.replace(task=dataclasses.replace(profile.task, negated_frames=args.negated_frames))
    if args.finetune_steps:
        profile = profile.replace(finetune=dataclasses.replace(
            profile.finetune, max_steps=args.finetune_steps, save_every=min(args.finetune_steps, profile.finetune.save_every)))
    steps = args.steps or profile.distill.max_steps
    if args.teacher is None:
        from studentbert.artifacts import pretrained_teacher

        args.teacher = pretrained_teacher(profile)
    train, test = task_datasets(profile)
    pairs = [list(zip(d["text"], d["label"], strict=True)) for d in (train, test)]
    baselines = {"majority_class": majority_baseline(test["label"]),
                 "bag_of_words": bag_of_words_baseline(*pairs), "bag_of_bigrams": bag_of_words_baseline(*pairs, max_n=2),
                 "rule": sum(sentiment_rule(t) == y for t, y in pairs[1]) / len(pairs[1])}
    forms = dict(sorted(Counter(review_form(t) for t in test["text"]).items()))
    print(f"task: {len(train)} train, {len(test)} test, forms {forms}; baselines "
          + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()), flush=True)

    slugs = [slug for slug, *_ in ABLATION_ROWS + CONTROL_ROWS]
    names = ["teacher", "triple-loss+task-distillation", *slugs]
    per_seed: dict[str, list[dict]] = {n: [] for n in names}
    for seed in args.seeds:
        s = profile.replace(distill=dataclasses.replace(profile.distill, seed=seed),
                            finetune=dataclasses.replace(profile.finetune, seed=seed))
        root = args.work / f"seed-{seed}"
        ft, max_length = s.finetune, s.task.max_length
        teacher = finetune(args.teacher, train, test, root / "teacher", ft, max_length)
        rows = {r["name"]: r for r in ablation(s, args.teacher, root / "ablation", steps=steps, rows=slugs)}
        task_distilled = finetune(rows["triple-loss"]["student_dir"], train, test, root / "task-distilled", ft,
                                  max_length, teacher_dir=teacher["model_dir"], alpha=args.alpha,
                                  temperature=args.temperature)
        found = {"teacher": teacher, "triple-loss+task-distillation": task_distilled, **rows}
        for name in names:
            r = found[name]
            per_seed[name].append({
                "seed": seed, "accuracy": r["accuracy"], "model_dir": str(r["model_dir"]),
                "heldout_mlm_accuracy": r.get("heldout_mlm_accuracy"),
                "by_form": accuracy_by_form(r["model_dir"], test, max_length)})
        print(f"seed {seed}: " + ", ".join(f"{n} {found[n]['accuracy']:.3f}" for n in names), flush=True)

    reference = [r["accuracy"] for r in per_seed["triple-loss"]]
    table = {}
    for name in names:
        accuracies = [r["accuracy"] for r in per_seed[name]]
        deltas = [100 * (a - b) for a, b in zip(accuracies, reference, strict=True)]
        by_form = {f: spread([r["by_form"][f] for r in per_seed[name]])["mean"] for f in per_seed[name][0]["by_form"]}
        table[name] = {**spread(accuracies), "accuracies": accuracies,
                       "delta_vs_triple_loss_points": spread(deltas) | {"per_seed": deltas},
                       "paper_table_4_points": PAPER_TABLE_4.get(name), "mean_accuracy_by_form": by_form,
                       "runs": per_seed[name]}
    described = {slug: description for slug, description, *_ in ABLATION_ROWS + CONTROL_ROWS}
    result = {
        "benchmark": "task_seeds",
        "command": command_line("bench_task_seeds.py", argv),
        "hardware": hardware("cpu"), "busy_cores_at_start": busy,
        "task": {"name": profile.task.name, "negated_frames": profile.task.negated_frames, "num_train": len(train),
                 "num_test": len(test), "test_forms": forms},
        "settings": {"teacher": str(args.teacher), "seeds": args.seeds, "distill_steps": steps,
                     "finetune": dataclasses.asdict(profile.finetune), "alpha": args.alpha,
                     "temperature": args.temperature, "torch_threads": torch.get_num_threads()},
        "profile_settings": seeds_study_settings(profile.replace(
            distill=dataclasses.replace(profile.distill, max_steps=steps))),
        "baselines": baselines,
        "descriptions": {"teacher": "the teacher, fine-tuned on the labels",
                         "triple-loss+task-distillation": "triple-loss student, task-distilled from the teacher",
                         **described},
        "rows": table,
        "wall_seconds": time.perf_counter() - t_start,
    }
    print(f"\n{'row':30s} {'mean':>6s} {'std':>6s} {'min':>6s} {'max':>6s} {'vs triple (pts)':>16s}  by form")
    for name in names:
        t = table[name]
        d = t["delta_vs_triple_loss_points"]
        print(f"{name:30s} {t['mean']:6.3f} {t['std']:6.3f} {t['min']:6.3f} {t['max']:6.3f} "
              f"{d['mean']:+7.1f} ± {d['std']:4.1f}  " + " ".join(f"{f} {a:.2f}" for f, a in t["mean_accuracy_by_form"].items()))
    print("baselines: " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items())
          + f"; {result['wall_seconds']:.0f} s in all")
    write_json(result, args.json, "task_seeds_cpu.json")
    return result


if __name__ == "__main__":
    main()
