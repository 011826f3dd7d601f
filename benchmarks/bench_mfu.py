"""Model FLOPs utilisation (MFU) of a pretraining step and a distillation step, on one GPU.

MFU = (FLOPs the model needs per step x steps per second) / (the peak matrix-multiply rate of the same GPU).

* The FLOPs per step are counted analytically from the configuration and the batch (``flops.py``: matrix
  products only, 2 per multiply-add, backward = 2 x forward). Pretraining (:func:`studentbert.pretrain.pretraining_loss`):
  3 x the teacher's forward, with MLM logits only at the masked positions. Distillation
  (:class:`studentbert.distill.DistillationStep`): the frozen teacher's forward (logits at every real token) +
  3 x the student's forward. The script also counts one step of each with
  :class:`torch.utils.flop_counter.FlopCounterMode` and records the ratio, as a check of the formula.
* The peak is *measured*: the best rate of a large square ``torch.matmul`` in bf16 on the same GPU, in the
  same process (on a CPU, in fp32: the dtype the steps run in there). Against the vendor's datasheet figure the
  MFU would be lower still.
* The steps are those of training: bf16 autocast, gradient clipping, AdamW fused
  (:func:`studentbert.training.make_adamw`), dropout on; ``--compile`` wraps the trained model in ``torch.compile``
  as ``TrainConfig(compile=True)`` does. Batches are full-length sequences (no padding; 15% of each sequence
  masked), already on the GPU: the measurement is the model's computation, not the data pipeline.
* Pretraining and distillation rounds of ``--steps`` steps alternate (interleaved); the table shows the
  median and the best round.

Goal: MFU >= 40% for both steps at full size (BERT-base teacher, 6-layer student, sequences of 128 tokens).

    python benchmarks/bench_mfu.py                          # on a GPU: writes benchmarks/results/mfu_cuda_full.json
    python benchmarks/bench_mfu.py --compile                # the same with torch.compile
    python benchmarks/bench_mfu.py --device cpu --size tiny # smoke test of the code path on a CPU (writes nothing)

Without a GPU (and without ``--device cpu``) it says so and exits, writing nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import statistics
import sys

import torch
from benchlib import RESULTS, command_line, hardware, interleaved, resolve_device, synchronize, write_json
from flops import distillation_step_flops, pretraining_step_flops

from studentbert import BertConfig, BertForPreTraining, DistillationLoss, count_parameters, get_profile
from studentbert.distill import DistillationStep
from studentbert.pretrain import pretraining_loss
from studentbert.student_init import make_student
from studentbert.training import make_adamw, parameter_groups

GOAL_MFU = 0.40
SIZES = {
    # teacher config, student layers, batch, length
    "full": (BertConfig, 6, 128, 128),
    "tiny": (lambda: get_profile("tiny").teacher, 2, 32, 64),
}
MASKED_FRACTION = 0.15


def measure_matmul_peak(device: torch.device, dtype: torch.dtype, sizes: list[int], iters: int) -> dict:
    """The best FLOP rate of ``n x n @ n x n`` products in ``dtype``, over ``sizes``; FLOP/s and the detail."""
    detail = {}
    for n in sizes:
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        for _ in range(3):
            torch.matmul(a, b)
        def products(a=a, b=b):
            for _ in range(iters):
                torch.matmul(a, b)

        seconds = min(interleaved({"mm": products}, reps=3, warmup=0, device=device)["mm"])
        best = iters * 2 * n**3 / seconds
        detail[str(n)] = best
        del a, b
    return {"flops_per_s": max(detail.values()), "by_size": detail, "dtype": str(dtype).replace("torch.", ""),
            "iters": iters}


def make_batches(config: BertConfig, batch: int, length: int, device: torch.device, n: int = 4, seed: int = 0):
    """``n`` full-length batches (no padding) with ``round(0.15 (length - 1))`` masked positions per sequence
    (never [CLS] at position 0), so that every batch has the same number of masked tokens."""
    g = torch.Generator().manual_seed(seed)
    low = 1000 if config.vocab_size > 2000 else 5
    per_row = max(1, round(MASKED_FRACTION * (length - 1)))
    out = []
    for _ in range(n):
        ids = torch.randint(low, config.vocab_size, (batch, length), generator=g)
        labels = torch.full_like(ids, -100)
        for r in range(batch):
            pos = 1 + torch.randperm(length - 1, generator=g)[:per_row]
            labels[r, pos] = ids[r, pos]
        token_type_ids = (torch.arange(length) >= length // 2).long().expand(batch, length).contiguous()
        b = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "token_type_ids": token_type_ids,
             "labels": labels, "next_sentence_label": torch.randint(0, 2, (batch,), generator=g)}
        out.append({k: v.to(device) for k, v in b.items()})
    return out, per_row * batch


def count_with_flop_counter(fn, device: torch.device) -> int | None:
    """Matrix FLOPs of ``fn()`` as torch's FlopCounterMode counts them (None if it cannot)."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.utils.flop_counter import FlopCounterMode

        # on a CPU, the fused attention kernel has no FLOP formula; the math path is made of counted products
        backend = sdpa_kernel(SDPBackend.MATH) if device.type == "cpu" else contextlib.nullcontext()
        with backend, FlopCounterMode(display=False) as counter:
            fn()
        return int(counter.get_total_flops())
    except Exception as e:  # a check, not the measurement: report and go on
        print(f"(FlopCounterMode check skipped: {type(e).__name__}: {e})")
        return None


def run(args, device: torch.device, batch: int) -> dict:
    make_config, layers, _, length = SIZES[args.size]
    config = make_config()
    length = args.length or length
    bf16 = device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext

    torch.manual_seed(0)
    pre_model = BertForPreTraining(config).to(device).train()  # pretrained: every parameter trained
    teacher = copy.deepcopy(pre_model)  # distillation: a frozen copy (DistillationStep sets eval, no grad)
    student = make_student(teacher, layers).to(device).train()
    distill_fn = DistillationStep(teacher, DistillationLoss())
    pre_opt = make_adamw(parameter_groups(pre_model, 0.01), 1e-4, device)
    dist_opt = make_adamw(parameter_groups(student, 0.01), 1e-4, device)
    pre_run = torch.compile(pre_model) if args.compile else pre_model
    student_run = torch.compile(student) if args.compile else student
    batches, masked = make_batches(config, batch, length, device)
    state = {"pretraining": 0, "distillation": 0}

    def make_step(name: str, loss_fn, trained: torch.nn.Module, optimizer, default_model):
        """One optimizer step of ``name`` on the next batch: forward under autocast, backward, clip, step."""

        def step(model=default_model):
            b = batches[state[name] % len(batches)]
            state[name] += 1
            with autocast():
                loss, _ = loss_fn(model, b)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(trained.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return step

    pretraining_step = make_step("pretraining", pretraining_loss, pre_model, pre_opt, pre_run)
    distillation_step = make_step("distillation", distill_fn, student, dist_opt, student_run)

    flops = {"pretraining": {"total": pretraining_step_flops(config, batch, length, masked)},
             "distillation": distillation_step_flops(config, student.config, batch, length, rows=batch * length)}
    counted = {"pretraining": count_with_flop_counter(lambda: pretraining_step(pre_model), device),
               "distillation": count_with_flop_counter(lambda: distillation_step(student), device)}

    steps = args.steps
    rounds = {"pretraining": lambda: [pretraining_step() for _ in range(steps)],
              "distillation": lambda: [distillation_step() for _ in range(steps)]}
    times = interleaved(rounds, reps=args.reps, warmup=args.warmup, device=device)
    results = {}
    for name, seconds in times.items():
        per_step = [s / steps for s in seconds]
        median, fastest = statistics.median(per_step), min(per_step)
        rate, best_rate = flops[name]["total"] / median, flops[name]["total"] / fastest  # FLOP/s
        mfu, best_mfu = rate / args.peak["flops_per_s"], best_rate / args.peak["flops_per_s"]
        results[name] = {
            "flops_per_step": flops[name], "flop_counter_flops_per_step": counted[name],
            "flop_counter_ratio": counted[name] / flops[name]["total"] if counted[name] else None,
            "step_ms_median": 1e3 * median, "step_ms_min": 1e3 * fastest, "step_ms_all": [1e3 * s for s in per_step],
            "achieved_tflops_median": rate / 1e12, "achieved_tflops_best": best_rate / 1e12,
            "mfu_median": mfu, "mfu_best": best_mfu, "tokens_per_s_median": batch * length / median,
            "goal": GOAL_MFU, "passed": bool(mfu >= GOAL_MFU),
        }
    synchronize(device)
    memory = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"config": config.to_dict(), "student_layers": layers, "length": length, "batch": batch,
            "masked_per_batch": masked, "teacher_parameters": count_parameters(pre_model),
            "student_parameters": count_parameters(student), "results": results, "max_memory_gib": memory}


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--batch", type=int, default=None, help="batch size (default: 128 full, 32 tiny)")
    parser.add_argument("--length", type=int, default=None, help="tokens per sequence (default: 128 full, 64 tiny)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default: 10 GPU, 2 CPU)")
    parser.add_argument("--reps", type=int, default=5, help="timed rounds of each step (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default 1; more with --compile)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the trained model")
    parser.add_argument("--json", default=None,
                        help="output (default on a GPU: benchmarks/results/mfu_cuda_<size>[_compiled].json; on a "
                             "CPU nothing is written unless a path is given)")
    args = parser.parse_args(argv)
    if args.device == "auto" and not torch.cuda.is_available():
        print("bench_mfu.py measures the utilisation of a GPU, and torch sees none here "
              "(torch.cuda.is_available() is False): nothing measured, nothing written.\n"
              "Run it on a machine with a CUDA GPU, or try the code path on this CPU with\n"
              "    python benchmarks/bench_mfu.py --device cpu --size tiny", file=sys.stderr)
        return None
    device = resolve_device(args.device)
    args.steps = args.steps or (10 if device.type == "cuda" else 2)
    batch = args.batch or SIZES[args.size][2]
    hw = hardware(device)

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    sizes, iters = ([4096, 8192], 20) if device.type == "cuda" else ([512, 1024], 5)
    args.peak = measure_matmul_peak(device, dtype, sizes, iters)
    print(f"{hw['gpu'] or hw['cpu']}, {hw['threads']} threads, torch {hw['torch']}"
          f"{', torch.compile' if args.compile else ''}")
    print(f"peak matmul rate, measured ({args.peak['dtype']}): {args.peak['flops_per_s'] / 1e12:.1f} TFLOP/s "
          f"(best of sizes {sizes})")

    batch_reduced_from = None
    while True:
        try:
            out = run(args, device, batch)
            break
        except torch.cuda.OutOfMemoryError:
            if batch <= 1:
                raise
        gc.collect()  # outside the except block: the failed attempt's tensors can be freed
        torch.cuda.empty_cache()
        batch_reduced_from = batch_reduced_from or batch
        batch //= 2
        print(f"out of GPU memory: again with batch {batch}")

    c = out["config"]
    print(f"[{args.size}] teacher {c['num_layers']} layers, H={c['hidden_size']}, V={c['vocab_size']}; student "
          f"{out['student_layers']} layers; batch {out['batch']} x {out['length']} tokens, "
          f"{out['masked_per_batch']} masked; {args.reps} rounds of {args.steps} steps after {args.warmup} warm-up")
    print(f"{'step':13s} {'GFLOP/step':>11s} {'counted/formula':>16s} {'ms/step':>8s} {'(min)':>7s} "
          f"{'TFLOP/s':>8s} {'MFU':>6s} {'(best)':>7s}  goal >= {GOAL_MFU:.0%}")
    for name, r in out["results"].items():
        ratio = f"{r['flop_counter_ratio']:.3f}" if r["flop_counter_ratio"] else "n/a"
        print(f"{name:13s} {r['flops_per_step']['total'] / 1e9:11.1f} {ratio:>16s} {r['step_ms_median']:8.2f} "
              f"{r['step_ms_min']:7.2f} {r['achieved_tflops_median']:8.2f} {r['mfu_median']:6.1%} "
              f"{r['mfu_best']:7.1%}  {('met' if r['passed'] else 'missed') if device.type == 'cuda' else '(CPU: no goal)'}")

    result = {
        "benchmark": "mfu", "command": command_line("bench_mfu.py", argv), "hardware": hw, "size": args.size,
        "compile": args.compile, "dtype": "bf16 autocast" if device.type == "cuda" else "fp32",
        "peak_matmul": args.peak, "steps_per_round": args.steps, "reps": args.reps, "warmup": args.warmup,
        "batch_reduced_from": batch_reduced_from, **out,
        "flop_formula": "pretraining = 3 [n_layers B L (8H^2 + 4HI + 4LH) + M 2(H^2 + HV) + B 2(H^2 + 2H)]; "
                        "distillation = teacher forward (logits at R = B L rows) + 3 student forward; "
                        "see benchmarks/flops.py",
        "goal": {"metric": "MFU = analytic FLOPs per step / median step time / measured peak matmul rate",
                 "target": GOAL_MFU, "direction": ">="},
        "passed": all(r["passed"] for r in out["results"].values()),
    }
    path = args.json
    if path is None and device.type == "cuda":
        path = str(RESULTS / f"mfu_cuda_{args.size}{'_compiled' if args.compile else ''}.json")
    write_json(result, path)
    return result


if __name__ == "__main__":
    main()
