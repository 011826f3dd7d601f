"""Distillation throughput (real tokens per second) of studentbert's loop against a plain loop, side by side.

Both loops distil the same teacher into the same student (a copy of one initialisation) with DistilBERT's triple
loss (5 soft + 2 MLM + 1 cosine, T = 2), on the same examples, for the same number of steps.

**Ours**: one step of :class:`studentbert.training.Trainer`, without its logging and checkpoints: batches grouped
by length (:func:`studentbert.training.batch_order`), :class:`studentbert.distill.DistillationStep` (the teacher
under ``torch.inference_mode``; MLM logits of both models only at the real tokens, where the loss needs them),
bf16 autocast on a GPU (fp32 on a CPU, as in training), gradient clipping, AdamW fused where torch has the
kernel (:func:`studentbert.training.make_adamw`, with :func:`~studentbert.training.parameter_groups`), the
learning-rate schedule.

**Plain**: the same step written the obvious way: batches in random order, padded to the longest sequence of
each batch (what a data collator does by default); the teacher in eval mode under ``torch.no_grad()`` (also the
obvious way; ``inference_mode`` saves a little more); full ``(B, L, V)`` logits from both models and the soft
loss on every position, padding included; fp32; ``torch.optim.AdamW(student.parameters())`` (not fused);
the same clipping. Padding rows in the soft loss change the objective slightly, which is why the script also
checks the loss of a plain loop that leaves the padding out: on the same batch, in fp32, without dropout, it
must equal ours (printed as "equivalence").

Timing: ``--reps`` rounds after ``--warmup``. Each round takes ``--steps`` batches' worth of fresh examples;
both loops train on exactly those examples (ours grouped by length, plain in random order), one loop after the
other, the order swapped every round. Reported: per-loop median and best tokens/s over the rounds, and the
speed-up ours / plain, paired by round (same examples, hence same tokens).

Data: the tiny profile's generated corpus, packed into single-segment examples of at most ``max_length`` tokens
with the tiny profile's tokenizer (offline; for the full size the ids index into BERT-base's 30,522-entry
vocabulary as well; speed does not depend on the ids). Models: random weights (speed does not depend on them).

    python benchmarks/bench_distill.py                      # tiny, CPU: well under 2 minutes on 2 cores
    python benchmarks/bench_distill.py --size full          # BERT-base -> 6 layers, on the GPU (bf16)
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import math
import statistics
import time

import torch
import torch.nn.functional as F
from benchlib import command_line, hardware, resolve_device, synchronize, write_json

from studentbert import BertConfig, BertForPreTraining, DistillationLoss, count_parameters, get_profile
from studentbert.data import MLMCollator
from studentbert.distill import DistillationStep
from studentbert.student_init import make_student
from studentbert.training import batch_order, linear_schedule, make_adamw, parameter_groups
from studentbert.triple_loss import DistillationLossWeights

SIZES = {
    # teacher, student layers, max_length, batch size, steps per round
    "tiny": dict(teacher=lambda: get_profile("tiny").teacher, layers=2, max_length=64, batch=32, steps=8),
    "full": dict(teacher=lambda: BertConfig(), layers=6, max_length=128, batch=128, steps=8),
}
LEARNING_RATE, WEIGHT_DECAY, MAX_GRAD_NORM = 5e-4, 0.01, 1.0


def load_examples(max_length: int):
    """Single-segment examples from the tiny profile's corpus and tokenizer (cached under STUDENTBERT_HOME)."""
    from studentbert.artifacts import corpus, tokenizer_for
    from studentbert.data.segments import build_segment_examples

    tokenizer = tokenizer_for("tiny")
    train_docs, _ = corpus("tiny")
    examples = build_segment_examples(train_docs, tokenizer, max_length=max_length)
    return [{"input_ids": ids} for ids in examples["input_ids"]], tokenizer


# --------------------------------------------------------------------------------------------- the plain loss


def plain_loss(student_out, teacher_out, batch, weights: DistillationLossWeights, soft_on: str = "all"):
    """DistilBERT's triple loss from full ``(B, L, V)`` logits, written out.

    ``soft_on="all"``: the soft loss on every position, padding included (the obvious code);
    ``"real"``: on the real tokens only (``attention_mask == 1``), which is DistilBERT's objective.
    """
    s_logits, t_logits = student_out.mlm_logits, teacher_out.mlm_logits  # (B, L, V)
    V = s_logits.size(-1)
    real = batch["attention_mask"].bool()  # (B, L)
    if soft_on == "real":
        s_rows, t_rows = s_logits[real], t_logits[real]
    else:
        s_rows, t_rows = s_logits.reshape(-1, V), t_logits.reshape(-1, V)
    T = weights.temperature
    soft = T**2 * F.kl_div(F.log_softmax(s_rows / T, dim=-1), F.log_softmax(t_rows / T, dim=-1),
                           reduction="batchmean", log_target=True)
    hard = F.cross_entropy(s_logits.reshape(-1, V), batch["labels"].reshape(-1), ignore_index=-100)
    s_h, t_h = student_out.encoder.last_hidden_state[real], teacher_out.encoder.last_hidden_state[real]
    cos = F.cosine_embedding_loss(s_h, t_h, torch.ones(s_h.size(0), device=s_h.device))
    total = weights.alpha_ce * soft + weights.alpha_mlm * hard + weights.alpha_cos * cos
    return total, {"loss_soft": soft.item(), "loss_hard": hard.item(), "loss_cos": cos.item()}


# --------------------------------------------------------------------------------------------- the two loops


class OurLoop:
    """What :meth:`studentbert.training.Trainer.train` does at every step, minus logging and checkpoints."""

    def __init__(self, teacher, student, tokenizer, device, bf16: bool, max_steps: int) -> None:
        self.student, self.device = student, device
        self.step_fn = DistillationStep(teacher, DistillationLoss())
        self.collate = MLMCollator(tokenizer, seed=0, return_token_type_ids=False)
        self.optimizer = make_adamw(parameter_groups(student, WEIGHT_DECAY), LEARNING_RATE, device)
        warmup = int(0.06 * max_steps)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: linear_schedule(s, max_steps, warmup))
        self.autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
        self.fused = bool(self.optimizer.defaults.get("fused"))

    def step(self, features) -> tuple[int, int]:
        batch = self.collate(features)
        mask = batch["attention_mask"]
        real, padded = int(mask.sum()), mask.numel()
        batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
        with self.autocast():
            loss, _ = self.step_fn(self.student, batch)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss {loss.item()}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), MAX_GRAD_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return real, padded


class PlainLoop:
    """The obvious loop: fp32, full logits, soft loss on every position, plain AdamW."""

    def __init__(self, teacher, student, tokenizer, device) -> None:
        self.teacher, self.student, self.device = teacher.eval(), student, device
        self.collate = MLMCollator(tokenizer, seed=0, return_token_type_ids=False)
        self.optimizer = torch.optim.AdamW(student.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        self.weights = DistillationLossWeights()

    def step(self, features) -> tuple[int, int]:
        batch = self.collate(features)
        mask = batch["attention_mask"]
        real, padded = int(mask.sum()), mask.numel()
        batch = {k: v.to(self.device) for k, v in batch.items()}
        with torch.no_grad():
            t = self.teacher(batch["input_ids"], batch["attention_mask"])
        s = self.student(batch["input_ids"], batch["attention_mask"])
        loss = plain_loss(s, t, batch, self.weights, soft_on="all")[0]
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"loss {loss.item()}")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.student.parameters(), MAX_GRAD_NORM)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return real, padded


# --------------------------------------------------------------------------------------------- equivalence


def check_equivalence(teacher, student, tokenizer, features, device, bf16: bool) -> dict:
    """The losses of both loops on one batch: ours, plain with the padding left out, plain with it included.

    fp32, no dropout (eval mode), the same student weights: ours and plain-without-padding compute the same
    objective, so the total and each of the three terms must agree to rounding; plain-with-padding computes
    another one (its soft term differs). Pass a student that differs from the teacher (e.g. randomly
    initialised), or the soft term is near 0 and the check says little.
    """
    batch = MLMCollator(tokenizer, seed=123, return_token_type_ids=False)(features)
    batch = {k: v.to(device) for k, v in batch.items()}
    was_training = student.training
    student.eval()
    with torch.no_grad():
        ours, ours_terms = DistillationStep(teacher, DistillationLoss())(student, batch)
        ours = ours.item()
        t = teacher(batch["input_ids"], batch["attention_mask"])
        s = student(batch["input_ids"], batch["attention_mask"])
        w = DistillationLossWeights()
        plain_real, real_terms = plain_loss(s, t, batch, w, soft_on="real")
        plain_all, all_terms = plain_loss(s, t, batch, w, soft_on="all")
        plain_real, plain_all = plain_real.item(), plain_all.item()
        ours_bf16 = None
        if bf16:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                ours_bf16 = DistillationStep(teacher, DistillationLoss())(student, batch)[0].item()
    student.train(was_training)
    mask = batch["attention_mask"]
    rel = 1e-5  # relative tolerance, each term and the total
    agree = all(abs(a - b) <= rel * max(1.0, abs(a)) for a, b in
                [(ours, plain_real), *((ours_terms[k], real_terms[k]) for k in real_terms)])
    return {
        "ours_fp32": ours, "plain_without_padding_fp32": plain_real, "plain_with_padding_fp32": plain_all,
        "terms_ours": ours_terms, "terms_plain_without_padding": real_terms, "terms_plain_with_padding": all_terms,
        "abs_diff_ours_vs_plain_without_padding": abs(ours - plain_real),
        "abs_diff_ours_vs_plain_with_padding": abs(ours - plain_all),
        "tolerance": rel * max(1.0, abs(ours)), "relative_tolerance": rel, "agree": agree,
        "padding_fraction_of_batch": 1 - float(mask.float().mean()),
        "ours_bf16_autocast": ours_bf16,
    }


# --------------------------------------------------------------------------------------------- timing


def rounds_of_examples(n_examples: int, per_round: int, n_rounds: int, seed: int = 0) -> list[list[int]]:
    """``n_rounds`` disjoint draws of ``per_round`` example indices (reshuffled when the data runs out)."""
    if per_round > n_examples:
        raise ValueError(f"a round needs {per_round} examples but there are {n_examples}: lower --batch or --steps.")
    g = torch.Generator().manual_seed(seed)
    pool: list[int] = []
    out = []
    for _ in range(n_rounds):
        if len(pool) < per_round:
            pool = torch.randperm(n_examples, generator=g).tolist()
        out.append(pool[:per_round])
        pool = pool[per_round:]
    return out


def run_comparison(teacher, s_cfg_layers, tokenizer, examples, device, bf16, batch, steps, reps, warmup) -> dict:
    student = make_student(teacher, s_cfg_layers, init="teacher", seed=0).to(device).train()
    loops = {"ours": OurLoop(teacher, student, tokenizer, device, bf16, max_steps=(reps + warmup) * steps),
             "plain": PlainLoop(teacher, copy.deepcopy(student), tokenizer, device)}
    lengths = [len(ex["input_ids"]) for ex in examples]
    rounds = rounds_of_examples(len(examples), batch * steps, reps + warmup)
    record = {name: {"seconds": [], "real_tokens": [], "padded_tokens": []} for name in loops}
    for r, subset in enumerate(rounds):
        sub_lengths = [lengths[i] for i in subset]
        order = {"ours": batch_order(sub_lengths, batch, seed=0, epoch=r, group_by_length=True),
                 "plain": batch_order(sub_lengths, batch, seed=0, epoch=r, group_by_length=False)}
        names = ["ours", "plain"] if r % 2 == 0 else ["plain", "ours"]
        for name in names:
            synchronize(device)
            t0 = time.perf_counter()
            real = padded = 0
            for b in order[name]:
                n_real, n_padded = loops[name].step([examples[subset[i]] for i in b])
                real, padded = real + n_real, padded + n_padded
            synchronize(device)
            if r >= warmup:
                rec = record[name]
                rec["seconds"].append(time.perf_counter() - t0)
                rec["real_tokens"].append(real)
                rec["padded_tokens"].append(padded)
    out = {}
    for name, rec in record.items():
        tps = [n / s for n, s in zip(rec["real_tokens"], rec["seconds"], strict=True)]
        out[name] = {
            "tokens_per_s_median": statistics.median(tps), "tokens_per_s_best": max(tps), "tokens_per_s_all": tps,
            "round_seconds_median": statistics.median(rec["seconds"]), "round_seconds_all": rec["seconds"],
            "real_tokens_per_round": rec["real_tokens"], "padded_tokens_per_round": rec["padded_tokens"],
            "padding_fraction": 1 - sum(rec["real_tokens"]) / sum(rec["padded_tokens"]),
        }
    paired = [p / o for o, p in zip(out["ours"]["round_seconds_all"], out["plain"]["round_seconds_all"], strict=True)]
    out["speedup_paired_median"] = statistics.median(paired)
    out["speedup_paired_all"] = paired
    out["speedup_of_best"] = out["ours"]["tokens_per_s_best"] / out["plain"]["tokens_per_s_best"]
    out["ours_fused_adamw"] = loops["ours"].fused
    out["student_parameters"] = count_parameters(student)
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 32 tiny, 128 full)")
    parser.add_argument("--steps", type=int, default=None, help="steps per round and loop (default 8)")
    parser.add_argument("--reps", type=int, default=None, help="timed rounds (default: 8 tiny, 5 full)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--json", default=None,
                        help="output (default: benchmarks/results/distill_<cpu|cuda>_<size>.json; '' to skip)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    size = SIZES[args.size]
    batch, steps = args.batch or size["batch"], args.steps or size["steps"]
    reps = args.reps or (8 if args.size == "tiny" else 5)
    bf16 = device.type == "cuda"
    started = time.perf_counter()

    examples, tokenizer = load_examples(size["max_length"])
    t_cfg = size["teacher"]()
    torch.manual_seed(0)
    teacher = BertForPreTraining(t_cfg).to(device).eval().requires_grad_(False)
    hw = hardware(device)
    print(f"{hw['gpu'] or hw['cpu']}, {hw['threads']} threads, torch {hw['torch']}; ours in "
          f"{'bf16 autocast' if bf16 else 'fp32'}, plain in fp32")
    print(f"[{args.size}] teacher {t_cfg.num_layers} layers, H={t_cfg.hidden_size}, V={t_cfg.vocab_size} -> student "
          f"{size['layers']} layers; {len(examples)} examples of at most {size['max_length']} tokens")

    # a randomly initialised student: far from the teacher, so that the soft term is far from 0
    equivalence = check_equivalence(teacher, make_student(teacher, size["layers"], init="random", seed=1).to(device),
                                    tokenizer, examples[:batch], device, bf16)
    e = equivalence
    print(f"\nequivalence on one batch ({e['padding_fraction_of_batch']:.0%} padding), fp32, no dropout:\n"
          f"  ours                                  {e['ours_fp32']:.6f}\n"
          f"  plain, soft loss without the padding  {e['plain_without_padding_fp32']:.6f}   "
          f"|diff| {e['abs_diff_ours_vs_plain_without_padding']:.1e}  "
          f"({'agree' if e['agree'] else 'DISAGREE'}, tolerance {e['tolerance']:.0e})\n"
          f"  plain, soft loss with the padding     {e['plain_with_padding_fp32']:.6f}   "
          f"|diff| {e['abs_diff_ours_vs_plain_with_padding']:.1e}  (another objective)\n"
          f"  soft term: ours {e['terms_ours']['loss_soft']:.6f}, plain without padding "
          f"{e['terms_plain_without_padding']['loss_soft']:.6f}, with padding "
          f"{e['terms_plain_with_padding']['loss_soft']:.6f}")
    if e["ours_bf16_autocast"] is not None:
        print(f"  ours under bf16 autocast              {e['ours_bf16_autocast']:.6f}")
    if not e["agree"]:
        raise SystemExit("ours and the plain loss without padding disagree: not timing.")

    batch_reduced_from = None
    while True:
        try:
            comparison = run_comparison(teacher, size["layers"], tokenizer, examples, device, bf16, batch, steps,
                                        reps, args.warmup)
            break
        except torch.cuda.OutOfMemoryError:
            if batch <= 1:
                raise
        # outside the except block, the failed attempt's tensors can be freed
        gc.collect()
        torch.cuda.empty_cache()
        batch_reduced_from = batch_reduced_from or batch
        batch //= 2
        print(f"out of GPU memory: both loops again with batch {batch}")
    c = comparison
    print(f"\n{reps} rounds of {steps} steps per loop (batch {batch}) after {args.warmup} warm-up round(s):")
    print(f"{'loop':6s} {'tokens/s median':>16s} {'best':>10s} {'padding':>8s}")
    for name in ("ours", "plain"):
        r = c[name]
        print(f"{name:6s} {r['tokens_per_s_median']:16.0f} {r['tokens_per_s_best']:10.0f} {r['padding_fraction']:8.1%}")
    print(f"speed-up ours / plain: {c['speedup_paired_median']:.2f}x (median of the rounds, paired), "
          f"{c['speedup_of_best']:.2f}x (best rounds)")

    result = {
        "benchmark": "distill", "command": command_line("bench_distill.py", argv), "hardware": hw,
        "size": args.size, "teacher_config": t_cfg.to_dict(), "student_layers": size["layers"],
        "max_length": size["max_length"], "batch": batch, "batch_reduced_from": batch_reduced_from,
        "steps_per_round": steps, "reps": reps, "warmup": args.warmup, "num_examples": len(examples),
        "ours_dtype": "bf16 autocast" if bf16 else "fp32", "plain_dtype": "fp32",
        "ours": c["ours"], "plain": c["plain"],
        "speedup": c["speedup_paired_median"], "speedup_paired_all": c["speedup_paired_all"],
        "speedup_of_best": c["speedup_of_best"], "ours_fused_adamw": c["ours_fused_adamw"],
        "student_parameters": c["student_parameters"], "equivalence": equivalence,
        "goal": {"metric": "speedup = plain round time / our round time (same examples), median over rounds",
                 "target": 1.0, "direction": ">",
                 "note": "no target in the issue; ours must at least be faster than the plain loop"},
        "passed": bool(c["speedup_paired_median"] > 1.0),
        "wall_seconds": time.perf_counter() - started,
    }
    write_json(result, args.json, default_name=f"distill_{device.type}_{args.size}.json")
    return result


if __name__ == "__main__":
    main()
