"""Time studentbert's models against Hugging Face ``transformers`` on the CPU, same weights, same batch.

Four pairs of measurements, each taken side by side in one process:

* teacher: ``studentbert.BertForPreTraining`` vs ``transformers.BertForPreTraining``;
* student: ``studentbert.DistilBertForMaskedLM`` vs ``transformers.DistilBertForMaskedLM``;

each for a forward pass under ``torch.inference_mode()`` (eval mode) and for a training step's
forward + backward (train mode, dropout on; loss = MLM cross-entropy on ~15% of the positions, plus
NSP cross-entropy for the teacher) computing the same (B, L, V) logits on both sides; and for a
"training step" as each library is used in pretraining: ours projects to the vocabulary only at the masked
positions (``mlm_positions``), transformers' heads project every position and the loss ignores the rest
(``labels``). The ``transformers`` model is built from ours with
:func:`studentbert.to_transformers`, so both hold the same weights; the script first checks that their
logits agree on the padded batch.

Repetitions are interleaved (ours, theirs, ours, theirs, ..., swapping which goes first every
repetition) after a warm-up, so that a slow drift of the machine (another process, the CPU's clock)
hits both sides alike; the table reports medians and the ratio ours / theirs (< 1: ours is faster), and
also the fastest repetition of each side, which is the better estimate on a machine shared with other
jobs (their interference only ever adds time). On a busy machine, ``--threads 1 --clock cpu`` (CPU time
of one thread, which leaves out the time spent waiting for a core) gives the steadiest comparison.

Goal: ours takes at most the time of ``transformers`` (median ours / median theirs <= 1.0) in every row; the
JSON records it (``goal``), the verdict of each row and of all rows (``passed``), and the hardware.

    python benchmarks/bench_models.py                 # small config, well under a minute
    python benchmarks/bench_models.py --size base     # BERT-base teacher, 6-layer student (minutes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import transformers
from benchlib import cpu_name, hardware

import studentbert
from studentbert import (
    BertConfig,
    BertForPreTraining,
    DistilBertConfig,
    DistilBertForMaskedLM,
    to_transformers,
)

SIZES = {
    # name: (teacher config, batch size, sequence length)
    "small": (dict(num_layers=4, hidden_size=256, num_heads=4, intermediate_size=1024), 8, 128),
    "base": ({}, 8, 128),
}


def make_batch(vocab_size: int, batch: int, length: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random ids with padding: lengths spread between ``length // 2`` and ``length``; 15% of real tokens masked."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.linspace(length // 2, length, batch).round().long()
    attention_mask = (torch.arange(length)[None, :] < lengths[:, None]).long()  # (B, L)
    input_ids = torch.randint(1000, vocab_size, (batch, length), generator=g) * attention_mask  # pad id 0
    token_type_ids = ((torch.arange(length)[None, :] >= lengths[:, None] // 2) & attention_mask.bool()).long()
    chosen = (torch.rand(batch, length, generator=g) < 0.15) & attention_mask.bool()
    mlm_labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    nsp_labels = torch.randint(0, 2, (batch,), generator=g)
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                mlm_labels=mlm_labels, nsp_labels=nsp_labels)


# Each "step" function runs one model on the batch and returns the logits (forward) or the loss.
# The loss is computed outside the model, by the same code for both libraries.

def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1), ignore_index=-100)


def teacher_ours(model, b):
    out = model(b["input_ids"], b["attention_mask"], b["token_type_ids"])
    return out.mlm_logits, out.nsp_logits


def teacher_theirs(model, b):
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"])
    return out.prediction_logits, out.seq_relationship_logits


def student_ours(model, b):
    return (model(b["input_ids"], b["attention_mask"]).mlm_logits,)


def student_theirs(model, b):
    return (model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits,)


def loss_of(outputs, b):
    loss = mlm_loss(outputs[0], b["mlm_labels"])
    if len(outputs) == 2:
        loss = loss + F.cross_entropy(outputs[1], b["nsp_labels"])
    return loss


# "training step": each library as a pretraining loop uses it. Ours projects to the vocabulary only at the
# ~15% masked positions (``mlm_positions``); transformers' heads project every position and its loss ignores
# the others (``labels`` with -100).

def teacher_ours_step(model, b):
    positions = b["mlm_labels"] != -100  # (B, L)
    out = model(b["input_ids"], b["attention_mask"], b["token_type_ids"], mlm_positions=positions)
    return F.cross_entropy(out.mlm_logits, b["mlm_labels"][positions]) + F.cross_entropy(out.nsp_logits,
                                                                                       b["nsp_labels"])


def teacher_theirs_step(model, b):
    return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], token_type_ids=b["token_type_ids"],
                 labels=b["mlm_labels"], next_sentence_label=b["nsp_labels"]).loss


def student_ours_step(model, b):
    positions = b["mlm_labels"] != -100
    out = model(b["input_ids"], b["attention_mask"], mlm_positions=positions)
    return F.cross_entropy(out.mlm_logits, b["mlm_labels"][positions])


def student_theirs_step(model, b):
    return model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["mlm_labels"]).loss


TRAINING_STEPS = {"teacher": (teacher_ours_step, teacher_theirs_step),
                  "student": (student_ours_step, student_theirs_step)}

GOAL_RATIO = 1.0  # the goal: ours takes at most the time of transformers (median ours / median theirs <= 1)

CLOCK = time.perf_counter  # --clock cpu: time.process_time, the CPU time of this process


def time_forward(model, step, b) -> float:
    model.eval()
    t0 = CLOCK()
    with torch.inference_mode():
        step(model, b)
    return CLOCK() - t0


def time_train_step(model, step, b) -> float:
    model.train()
    t0 = CLOCK()
    loss = loss_of(step(model, b), b)
    loss.backward()
    t = CLOCK() - t0
    model.zero_grad(set_to_none=True)
    return t


def time_loss_step(model, step, b) -> float:
    model.train()
    t0 = CLOCK()
    step(model, b).backward()
    t = CLOCK() - t0
    model.zero_grad(set_to_none=True)
    return t


def compare(name, ours, theirs, step_ours, step_theirs, b, mode, warmup, reps) -> dict:
    timer = {"forward": time_forward, "forward+backward": time_train_step, "training step": time_loss_step}[mode]
    if mode == "training step":
        step_ours, step_theirs = TRAINING_STEPS[name]
    for _ in range(warmup):
        timer(ours, step_ours, b)
        timer(theirs, step_theirs, b)
    t_ours, t_theirs = [], []
    for r in range(reps):
        if r % 2 == 0:
            t_ours.append(timer(ours, step_ours, b))
            t_theirs.append(timer(theirs, step_theirs, b))
        else:
            t_theirs.append(timer(theirs, step_theirs, b))
            t_ours.append(timer(ours, step_ours, b))
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    return dict(model=name, mode=mode, ours_ms=1e3 * m_ours, theirs_ms=1e3 * m_theirs, ratio=m_ours / m_theirs,
                goal=GOAL_RATIO, passed=bool(m_ours / m_theirs <= GOAL_RATIO),
                ours_min_ms=1e3 * min(t_ours), theirs_min_ms=1e3 * min(t_theirs),
                ratio_of_min=min(t_ours) / min(t_theirs),
                ours_all_ms=[1e3 * t for t in t_ours], theirs_all_ms=[1e3 * t for t in t_theirs])


@torch.no_grad()
def check_parity(ours, theirs, step_ours, step_theirs, b) -> float:
    ours.eval()
    theirs.eval()
    diffs = [(a - c).abs().max().item() for a, c in zip(step_ours(ours, b), step_theirs(theirs, b), strict=True)]
    return max(diffs)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--reps", type=int, default=None, help="timed repetitions per side (default: 10)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="wall: elapsed time (default); cpu: CPU time of this process, which leaves out the time "
                             "the process waits for a core on a busy machine (meaningful with --threads 1)")
    parser.add_argument("--json", default=None,
                        help="where to write the results (default: benchmarks/results/models_cpu.json for the small "
                             "size, models_cpu_base.json for base; '' to skip)")
    args = parser.parse_args(argv)
    global CLOCK
    if args.threads:
        torch.set_num_threads(args.threads)
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    reps = args.reps or 10

    load_start = os.getloadavg()
    overrides, batch, length = SIZES[args.size]
    torch.manual_seed(0)
    t_config = BertConfig(**overrides)
    s_config = DistilBertConfig.from_teacher(t_config)
    b = make_batch(t_config.vocab_size, batch, length)

    teacher = BertForPreTraining(t_config)
    student = DistilBertForMaskedLM(s_config)
    hf_teacher, hf_student = to_transformers(teacher), to_transformers(student)
    attn_impl = {"teacher": hf_teacher.config._attn_implementation, "student": hf_student.config._attn_implementation}

    pairs = [("teacher", teacher, hf_teacher, teacher_ours, teacher_theirs),
             ("student", student, hf_student, student_ours, student_theirs)]
    parity = {name: check_parity(o, t, so, st, b) for name, o, t, so, st in pairs}
    for name, diff in parity.items():
        if diff > 1e-4:
            sys.exit(f"{name}: logits differ by {diff:.2e} between studentbert and transformers; not timing.")

    print(f"size={args.size}  teacher: {t_config.num_layers} layers, H={t_config.hidden_size}, "
          f"A={t_config.num_heads}; student: {s_config.num_layers} layers; batch {batch} x {length} "
          f"(padded: {int(b['attention_mask'].sum())}/{batch * length} real tokens)")
    print(f"torch {torch.__version__}, transformers {transformers.__version__} (attention: {attn_impl['teacher']}), "
          f"{torch.get_num_threads()} threads, {cpu_name()}")
    print(f"parity (max |logit diff|): teacher {parity['teacher']:.1e}, student {parity['student']:.1e}")
    print(f"{reps} interleaved repetitions after {args.warmup} warm-up; median (and fastest) {args.clock} time "
          f"per pass:\n")
    print(f"{'model':8s} {'pass':16s} {'ours ms':>9s} {'theirs ms':>10s} {'ours/theirs':>12s} "
          f"{'(min ours':>10s} {'theirs':>8s} {'ratio)':>7s}")
    rows = []
    for name, o, t, so, st in pairs:
        for mode in ("forward", "forward+backward", "training step"):
            row = compare(name, o, t, so, st, b, mode, args.warmup, reps)
            rows.append(row)
            print(f"{name:8s} {mode:16s} {row['ours_ms']:9.1f} {row['theirs_ms']:10.1f} {row['ratio']:12.3f} "
                  f"{row['ours_min_ms']:10.1f} {row['theirs_min_ms']:8.1f} {row['ratio_of_min']:7.3f}")

    result = dict(
        command=" ".join(["python", sys.argv[0], *(sys.argv[1:] if argv is None else argv)]),
        size=args.size, batch=batch, length=length, real_tokens=int(b["attention_mask"].sum()),
        teacher_config=t_config.to_dict(), student_config=s_config.to_dict(),
        torch=torch.__version__, transformers=transformers.__version__, studentbert=studentbert.__version__,
        python=platform.python_version(), cpu=cpu_name(), cpu_count=os.cpu_count(),
        threads=torch.get_num_threads(), load_average_1min=dict(start=load_start[0], end=os.getloadavg()[0]),
        hf_attn_implementation=attn_impl, dtype="float32",
        clock=args.clock, warmup=args.warmup, reps=reps, parity_max_abs_diff=parity, results=rows,
        device="cpu", gpu=None, hardware=hardware("cpu"),
        goal=dict(metric="ratio = median time ours / median time transformers, every model and pass",
                  target=GOAL_RATIO, direction="<="),
        passed=all(r["passed"] for r in rows),
    )
    print(f"\ngoal (ours <= {GOAL_RATIO:.1f}x the time of transformers in every row): "
          f"{'met' if result['passed'] else 'missed'}")
    if args.json is None:
        suffix = "" if args.size == "small" else f"_{args.size}"
        args.json = str(Path(__file__).resolve().parent / "results" / f"models_cpu{suffix}.json")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {path}")
    return result


if __name__ == "__main__":
    main()
