"""Chapter 6's sweep of the temperature T and of the soft-target weight alpha_ce, each over three or more seeds.

Task-agnostic distillation of the tiny pretrained teacher (:func:`studentbert.artifacts.pretrained_teacher`, the
teacher chapter 6 uses; ``--teacher DIR``: another tiny teacher, recorded in the file) into the tiny 2-layer
student, with the triple loss ``alpha_ce T² KL + alpha_mlm CE + alpha_cos (1 - cos)`` of chapter 5, for a reduced
number of steps (``--steps``, default 60 of the profile's 600; the learning-rate schedule, warm-up then linear
decay, is compressed into those steps). 60 steps take about 25 s a run on 2 cores with one torch thread
(``--threads``, default 1, so that the sums, and so the results, do not depend on the machine's cores or load), so
the 21 runs fit in about 10 minutes; the student is then far from converged, which the chapter says. Two
one-at-a-time sweeps around DistilBERT's defaults (alpha_ce 5, alpha_mlm 2, alpha_cos 1, T = 2;
:class:`studentbert.triple_loss.DistillationLossWeights`):

* **temperature**: T in {1, 2, 4, 8} at the default weights. The soft loss is multiplied by T², so its gradient
  keeps about the same size at every T (chapter 5); what changes is how much of the teacher's distribution
  beyond its top token the student is asked to match.
* **alpha_ce**: {0, 1.25, 5, 20} at T = 2, alpha_mlm 2, alpha_cos 1. Why these: the question is how much the
  soft-target term matters, so the sweep goes from *off* (0: the student learns from the true tokens and the
  hidden states only) through a quarter of the default to four times it, factors of 4 on a log scale, so that
  the soft term goes from weaker than the hard loss (1.25 : 2) to dominating it (20 : 2). AdamW is nearly
  invariant to the scale of the whole loss, so it is the weights' *ratios* that a sweep of one weight changes.

The default setting (T = 2, alpha_ce 5) belongs to both sweeps and is run once per seed. The seeds (``--seeds``,
default 0 1 2) change the data order, the masking and the dropout (``TrainConfig.seed``); the corpus, the
teacher and the student's initialisation (a copy of teacher layers) are the same in every run.

Per run, from the run's ``results.json`` (the final evaluation of :func:`studentbert.distill.distill`): the
student's held-out masked-LM accuracy and loss, and its agreement with the teacher
(:func:`studentbert.evaluation.teacher_student_agreement`: mean KL(teacher || student) at T = 1 and top-1
agreement at the masked positions). Per setting: mean, sample standard deviation (n - 1), min and max over the
seeds. Also recorded: the teacher's held-out accuracy and the student at initialisation (step 0) on the same
examples, as reference lines.

Runs go into ``--work-dir`` (default ``$TMPDIR/studentbert-distill-sweep``; one folder per setting and seed): a
finished run (one with ``results.json``) is reused, an interrupted one resumes from its checkpoint (as in
:func:`studentbert.experiments._run_distill`, which is not called because it would generate the corpus again for
each of the 21 runs, several seconds each; here it is generated once). Writes
``benchmarks/results/distill_sweep_cpu.json``, which chapter 6 reads (it trains nothing itself).

    python benchmarks/sweep_distillation.py                 # 7 settings x 3 seeds; ~10 min on 2 cores
    python benchmarks/sweep_distillation.py --steps 20 --seeds 0 --settings T=1 T=8 --json ""   # a quick try
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from benchlib import RESULTS, command_line, hardware, write_json

from studentbert import get_profile
from studentbert.artifacts import code_fingerprint, corpus, pretrained_teacher
from studentbert.data.segments import build_segment_examples
from studentbert.distill import distill, load_teacher, make_student
from studentbert.evaluation import evaluate_mlm, teacher_student_agreement
from studentbert.hf import load_tokenizer
from studentbert.profiles import Profile
from studentbert.speed import busy_cores
from studentbert.triple_loss import DistillationLossWeights

DEFAULT = DistillationLossWeights()
TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
ALPHA_CE = (0.0, 1.25, 5.0, 20.0)
#: what each run reports, read from its results.json: name in the sweep file -> key in results.json
METRICS = {"mlm_accuracy": "heldout_student_mlm_accuracy", "mlm_loss": "heldout_student_mlm_loss",
           "kl": "heldout_student_kl", "top1_agreement": "heldout_student_top1_agreement"}
DEFAULT_JSON = RESULTS / "distill_sweep_cpu.json"


def sweeps() -> dict[str, list[tuple[str, float, DistillationLossWeights]]]:
    """``{sweep: [(setting name, swept value, loss weights)]}``: T at the default weights, alpha_ce at T = 2."""
    return {
        "temperature": [(f"T={t:g}", t, dataclasses.replace(DEFAULT, temperature=t)) for t in TEMPERATURES],
        "alpha_ce": [(f"alpha_ce={a:g}", a, dataclasses.replace(DEFAULT, alpha_ce=a)) for a in ALPHA_CE],
    }


def run_name(weights: DistillationLossWeights) -> str:
    """The run folder of a setting: the same weights (the default, in both sweeps) share the folder."""
    w = weights
    return f"ce{w.alpha_ce:g}-mlm{w.alpha_mlm:g}-cos{w.alpha_cos:g}-T{w.temperature:g}"


def summarize(values: list[float]) -> dict[str, float]:
    """``mean``, ``std`` (sample standard deviation, n - 1), ``min``, ``max`` and ``n`` of the per-seed values."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values), "n": len(values)}


def short_profile(profile: Profile, steps: int, seed: int) -> Profile:
    """The profile with ``steps`` distillation steps, seeded by ``seed``, evaluated and saved once, at the end."""
    d = profile.distill
    return profile.replace(distill=dataclasses.replace(d, max_steps=steps, seed=seed, eval_every=steps,
                                                       save_every=steps, log_every=min(d.log_every, steps)))


def run(profile: Profile, teacher_dir: Path, folder: Path, weights: DistillationLossWeights,
        documents: list[list[str]], heldout: list[list[str]]) -> dict:
    """One distillation run into ``folder`` (reused when finished, resumed when interrupted); its results.json."""
    if not (folder / "results.json").is_file():
        distill(profile, teacher_dir, folder, documents=documents, heldout=heldout, weights=weights)
    return json.loads((folder / "results.json").read_text())


def reference(profile: Profile, teacher_dir: Path, heldout_docs: list[list[str]]) -> dict[str, dict[str, float]]:
    """The teacher's held-out masked-LM accuracy and loss, and the student at initialisation (step 0): its accuracy,
    loss and agreement with the teacher, on the held-out examples every run is evaluated on."""
    teacher = load_teacher(teacher_dir).eval()
    tokenizer = load_tokenizer(str(teacher_dir), "teacher")
    heldout = build_segment_examples(heldout_docs, tokenizer, max_length=profile.data.max_length)
    student = make_student(teacher, profile.student_layers).eval()  # the default layer map, as every run starts
    t = evaluate_mlm(teacher, heldout, tokenizer)
    s = {**evaluate_mlm(student, heldout, tokenizer), **teacher_student_agreement(teacher, student, heldout, tokenizer)}
    return {"teacher": {"mlm_accuracy": t["mlm_accuracy"], "mlm_loss": t["mlm_loss"]},
            "student_at_init": {k: s[k] for k in METRICS}, "heldout_examples": len(heldout)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60, help="distillation steps per run (the profile has 600)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="three or more for the results file")
    parser.add_argument("--settings", nargs="+", default=None,
                        help="run only these settings (e.g. T=1 alpha_ce=0); the results file needs all of them")
    parser.add_argument("--teacher", default=None,
                        help="a tiny teacher directory (default: the tiny pretrained teacher of the cache, pretrained "
                             "if the cache has none for this code)")
    parser.add_argument("--work-dir", default=str(Path(tempfile.gettempdir()) / "studentbert-distill-sweep"))
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (default 1: the same floating-point sums on any machine and under any load)")
    parser.add_argument("--json", default=None, help=f"output file (default {DEFAULT_JSON}; '' writes none)")
    args = parser.parse_args(argv)
    table = sweeps()
    known = [name for rows in table.values() for name, _, _ in rows]
    if args.settings and (unknown := sorted(set(args.settings) - set(known))):
        parser.error(f"unknown settings {unknown}: choose among {known}.")
    if args.steps < 1:
        parser.error(f"--steps must be a positive integer, got {args.steps}.")
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds {' '.join(map(str, args.seeds))} repeats a seed: give distinct seeds.")
    official = args.json is None or (args.json and Path(args.json).resolve() == DEFAULT_JSON.resolve())
    if official and (len(args.seeds) < 3 or args.settings):
        parser.error(f"{DEFAULT_JSON.name} holds every setting over three or more seeds: drop --settings and give "
                     f">= 3 --seeds, or pass --json OTHER.json (or --json '' for none).")

    busy = busy_cores()
    torch.set_num_threads(args.threads)
    profile = get_profile("tiny")
    t0 = time.perf_counter()
    teacher_dir = Path(args.teacher) if args.teacher else pretrained_teacher(profile)
    teacher_seconds = time.perf_counter() - t0
    work = Path(args.work_dir)
    print(f"teacher {teacher_dir} ({teacher_seconds:.0f} s to get it); runs in {work}; {args.steps} steps a run, "
          f"seeds {args.seeds}; {busy:.2f} busy cores at start, torch threads {torch.get_num_threads()}")
    documents, heldout_docs = corpus(profile)
    ref = reference(profile, teacher_dir, heldout_docs)
    print(f"teacher MLM accuracy {ref['teacher']['mlm_accuracy']:.3f}; student at init: "
          + ", ".join(f"{k} {v:.3f}" for k, v in ref["student_at_init"].items()))

    out: dict[str, list[dict]] = {}
    done: dict[str, dict] = {}  # run folder -> its per-run record (the default setting is run once a seed)
    sweep_start = time.perf_counter()
    for sweep, rows in table.items():
        out[sweep] = []
        for name, value, weights in rows:
            if args.settings and name not in args.settings:
                continue
            runs = []
            for seed in args.seeds:
                folder = work / run_name(weights) / f"seed{seed}"
                if str(folder) not in done:
                    t = time.perf_counter()
                    r = run(short_profile(profile, args.steps, seed), teacher_dir, folder, weights, documents,
                            heldout_docs)
                    if r["steps"] != args.steps:
                        parser.exit(2, f"{folder} holds a run of {r['steps']} steps, not {args.steps}: delete "
                                       f"it or pass another --work-dir.\n")
                    done[str(folder)] = {"seed": seed, **{k: r[v] for k, v in METRICS.items()},
                                         "seconds": r["seconds"], "run_dir": str(folder)}
                    rec = done[str(folder)]
                    print(f"{name:<16} seed {seed}: MLM acc {rec['mlm_accuracy']:.4f}, loss {rec['mlm_loss']:.4f}, "
                          f"KL {rec['kl']:.4f}, top-1 {rec['top1_agreement']:.4f}  ({time.perf_counter() - t:.0f} s)")
                runs.append(done[str(folder)])
            out[sweep].append({"name": name, "value": value, "weights": dataclasses.asdict(weights), "runs": runs,
                               "summary": {k: summarize([r[k] for r in runs]) for k in METRICS}})
    wall = time.perf_counter() - sweep_start

    print(f"\n{args.steps} steps a run, {len(args.seeds)} seeds; mean ± std (min-max)")
    for rows in out.values():
        for row in rows:
            print(f"{row['name']:<16}" + "  ".join(
                f"{k} {s['mean']:.4f} ± {s['std']:.4f} ({s['min']:.4f}-{s['max']:.4f})"
                for k, s in row["summary"].items() if k in ("mlm_accuracy", "top1_agreement")))
    goal_s = 15 * 60
    print(f"sweep: {wall:.0f} s for {len(done)} runs (goal <= {goal_s} s on 2 quiet cores: "
          f"{'met' if wall <= goal_s else f'missed by {wall / goal_s - 1:.0%}'}; finished runs reused count ~0)")
    result = {
        "what": "task-agnostic distillation of the tiny pretrained teacher into the tiny 2-layer student: T swept at "
                "the default weights, alpha_ce swept at T = 2 (alpha_mlm 2, alpha_cos 1), each setting over "
                "several seeds (data order, masking, dropout); final held-out metrics of each run",
        "command": command_line("sweep_distillation.py", argv), "hardware": hardware("cpu"),
        "busy_cores_at_start": busy, "threads": torch.get_num_threads(), "profile": profile.name,
        "steps": args.steps, "profile_steps": profile.distill.max_steps, "seeds": list(args.seeds),
        "train_config": dataclasses.asdict(short_profile(profile, args.steps, 0).distill) | {"seed": None},
        "teacher_dir": str(teacher_dir), "teacher_given": args.teacher is not None, "code_fingerprint": code_fingerprint(),
        "metrics": {"mlm_accuracy": "student's held-out masked-LM accuracy", "mlm_loss": "its held-out masked-LM "
                    "loss (nats)", "kl": "mean KL(teacher || student) at T = 1 over the masked positions (nats)",
                    "top1_agreement": "fraction of masked positions where the student's top token is the teacher's"},
        "statistics": "per setting: mean, std (sample, n - 1), min, max and n over the seeds' runs",
        "reference": ref, "sweeps": out, "sweep_seconds": wall, "runs": len(done),
        "teacher_seconds": teacher_seconds,
    }
    if args.json != "":
        write_json(result, args.json or DEFAULT_JSON)
    return result


if __name__ == "__main__":
    main()
