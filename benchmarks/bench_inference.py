"""Inference speed of the teacher (BERT) and the student (DistilBERT, same width, half the layers), side by side.

For two shapes, the tiny profile's teacher (4 layers, H=128) with its 2-layer student, and BERT-base (12 layers,
H=768) with DistilBERT-base (6 layers), both built from ``studentbert``'s own models with random weights (speed
does not depend on the values):

* parameters of each model, with and without the embedding tables;
* latency of one forward pass under ``torch.inference_mode()`` at batch 1 and batch 32, sequences of
  ``--length`` tokens without padding, and throughput (sequences per second) = batch / latency;
* two variants: the **encoder** (``BertModel`` with its pooler vs ``DistilBertModel``: what a fine-tuned
  classifier runs), on which the goal is set, and the encoder **+ MLM head** (``BertForPreTraining`` vs
  ``DistilBertForMaskedLM``: logits over the whole vocabulary at every position), which shows how a part whose
  cost does not shrink with the depth dilutes the speed-up (on a CPU at batch 1 only, by default: BERT-base's
  vocabulary projection at batch 32 takes tens of seconds there).

Goal: the student's encoder is at least 1.8x faster than the teacher's (median time ratio teacher / student),
at every batch size and both shapes. The analytic ratio of matrix FLOPs (``flops.py``) is printed next to
each measured ratio: halving the layers halves the encoder's FLOPs, so ~2x is the ceiling.

Teacher and student alternate in every repetition (interleaved, the order swapped each time); the tables
show medians and minima. The number of repetitions adapts to the time of one pass (``--case-seconds``), so
that BERT-base at batch 32 on a 2-core CPU stays within a couple of minutes.

    python benchmarks/bench_inference.py                      # CPU: tiny and base, 1-2 minutes on 2 cores
    python benchmarks/bench_inference.py --device cuda        # GPU (bf16 autocast): writes inference_cuda.json
"""

from __future__ import annotations

import argparse
import contextlib
import time

import torch
from benchlib import command_line, hardware, interleaved, resolve_device, summary, write_json
from flops import forward_flops

from studentbert import (
    BertConfig,
    BertForPreTraining,
    DistilBertConfig,
    DistilBertForMaskedLM,
    count_parameters,
    get_profile,
)

GOAL_SPEEDUP = 1.8


def configs(size: str) -> tuple[BertConfig, DistilBertConfig]:
    teacher = get_profile("tiny").teacher if size == "tiny" else BertConfig()  # BERT-base
    return teacher, DistilBertConfig.from_teacher(teacher)  # the same width, half the layers


def embedding_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters())


def measure_case(teacher, student, variant, batch, length, vocab, device, autocast, reps, warmup, case_seconds,
                 seed=0) -> dict:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000 if vocab > 2000 else 5, vocab, (batch, length), generator=g).to(device)

    def run(model, is_teacher):
        def call():
            with torch.inference_mode(), autocast():
                if variant == "encoder":
                    return model.bert(ids) if is_teacher else model.distilbert(ids)
                return model(ids)
        return call

    runs = {"teacher": run(teacher, True), "student": run(student, False)}
    # one untimed pass each, to learn how long a pass takes and fit the repetitions into the budget
    t0 = time.perf_counter()
    interleaved(runs, reps=0, warmup=max(1, warmup), device=device)
    per_round = (time.perf_counter() - t0) / max(1, warmup)
    reps = max(3, min(reps, int(case_seconds / max(per_round, 1e-9))))
    times = interleaved(runs, reps=reps, warmup=0, device=device)
    t, s = summary(times["teacher"]), summary(times["student"])
    return {
        "variant": variant, "batch": batch, "length": length, "reps": reps,
        "teacher": t, "student": s,
        "teacher_seq_per_s": batch / (t["median_ms"] / 1e3), "student_seq_per_s": batch / (s["median_ms"] / 1e3),
        "speedup": t["median_ms"] / s["median_ms"], "speedup_of_min": t["min_ms"] / s["min_ms"],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--sizes", nargs="+", default=["tiny", "base"], choices=("tiny", "base"))
    parser.add_argument("--length", type=int, default=128, help="tokens per sequence (default 128)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--mlm-batch-sizes", type=int, nargs="+", default=None,
                        help="batch sizes of the encoder + MLM head variant (default: 1 on a CPU, where BERT-base "
                             "with its vocabulary projection at batch 32 takes tens of seconds a pass; as "
                             "--batch-sizes on a GPU)")
    parser.add_argument("--variants", nargs="+", default=["encoder", "mlm"], choices=("encoder", "mlm"))
    parser.add_argument("--reps", type=int, default=20, help="most timed repetitions per case (default 20)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--case-seconds", type=float, default=None,
                        help="time budget of one case; fewer repetitions (but at least 3) when a pass is slow "
                             "(default: 12 on a CPU, 5 on a GPU)")
    parser.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto",
                        help="auto: bf16 autocast on a GPU, fp32 on a CPU (as in training)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--json", default=None,
                        help="output file (default: benchmarks/results/inference_<cpu|cuda>.json; '' to skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = ("bf16" if device.type == "cuda" else "fp32") if args.dtype == "auto" else args.dtype
    case_seconds = args.case_seconds or (5.0 if device.type == "cuda" else 12.0)
    mlm_batch_sizes = args.mlm_batch_sizes or (args.batch_sizes if device.type == "cuda" else [1])

    def autocast():
        if dtype == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    hw = hardware(device)
    print(f"{hw['gpu'] or hw['cpu']}, {hw['threads']} threads, torch {hw['torch']}, {dtype}; "
          f"sequences of {args.length} tokens, no padding, torch.inference_mode()")
    sizes, rows = {}, []
    started = time.perf_counter()
    for size in args.sizes:
        t_cfg, s_cfg = configs(size)
        length = min(args.length, t_cfg.max_position_embeddings)
        torch.manual_seed(0)
        teacher = BertForPreTraining(t_cfg).eval().to(device)
        student = DistilBertForMaskedLM(s_cfg).eval().to(device)
        params = {
            "teacher": count_parameters(teacher), "student": count_parameters(student),
            "teacher_encoder": count_parameters(teacher.bert), "student_encoder": count_parameters(student.distilbert),
            "teacher_embeddings": embedding_parameters(teacher), "student_embeddings": embedding_parameters(student),
        }
        flops = {
            "encoder": {"teacher": forward_flops(t_cfg, 1, length, logit_rows=0, pooler=True),
                        "student": forward_flops(s_cfg, 1, length, logit_rows=0)},
            "mlm": {"teacher": forward_flops(t_cfg, 1, length), "student": forward_flops(s_cfg, 1, length)},
        }
        sizes[size] = {"teacher_config": t_cfg.to_dict(), "student_config": s_cfg.to_dict(), "length": length,
                       "parameters": params, "forward_flops_per_sequence": flops}
        print(f"\n[{size}] teacher: {t_cfg.num_layers} layers, H={t_cfg.hidden_size}, V={t_cfg.vocab_size}, "
              f"{params['teacher'] / 1e6:.2f}M parameters ({params['teacher_embeddings'] / 1e6:.2f}M in embeddings); "
              f"student: {s_cfg.num_layers} layers, {params['student'] / 1e6:.2f}M "
              f"({params['student'] / params['teacher']:.0%} of the teacher's)")
        print(f"{'variant':8s} {'batch':>5s} {'teacher ms':>11s} {'student ms':>11s} {'speedup':>8s} "
              f"{'(of min)':>9s} {'FLOP ratio':>11s} {'student seq/s':>14s} {'reps':>5s}  goal >= {GOAL_SPEEDUP}")
        for variant in args.variants:
            for batch in (args.batch_sizes if variant == "encoder" else mlm_batch_sizes):
                row = measure_case(teacher, student, variant, batch, length, t_cfg.vocab_size, device, autocast,
                                   args.reps, args.warmup, case_seconds)
                row["size"] = size
                row["flop_ratio"] = flops[variant]["teacher"] / flops[variant]["student"]
                row["goal"] = GOAL_SPEEDUP if variant == "encoder" else None
                row["passed"] = bool(row["speedup"] >= GOAL_SPEEDUP) if variant == "encoder" else None
                rows.append(row)
                verdict = {True: "met", False: "missed", None: "(no goal)"}[row["passed"]]
                print(f"{variant:8s} {batch:5d} {row['teacher']['median_ms']:11.2f} {row['student']['median_ms']:11.2f} "
                      f"{row['speedup']:8.2f} {row['speedup_of_min']:9.2f} {row['flop_ratio']:11.2f} "
                      f"{row['student_seq_per_s']:14.1f} {row['reps']:5d}  {verdict}")
        del teacher, student
    goal_rows = [r for r in rows if r["passed"] is not None]
    result = {
        "benchmark": "inference", "command": command_line("bench_inference.py", argv), "hardware": hw,
        "dtype": dtype, "length": args.length, "batch_sizes": args.batch_sizes,
        "mlm_batch_sizes": mlm_batch_sizes, "warmup": args.warmup,
        "max_reps": args.reps, "case_seconds": case_seconds, "sizes": sizes, "results": rows,
        "goal": {"metric": "speedup = median teacher time / median student time, encoder variant",
                 "target": GOAL_SPEEDUP, "direction": ">="},
        "passed": bool(goal_rows) and all(r["passed"] for r in goal_rows),
        "wall_seconds": time.perf_counter() - started,
    }
    print(f"\ngoal (student encoder >= {GOAL_SPEEDUP}x faster in every case): "
          f"{'met' if result['passed'] else 'missed'}; {result['wall_seconds']:.0f} s in all")
    write_json(result, args.json, default_name=f"inference_{device.type}.json")
    return result


if __name__ == "__main__":
    main()
