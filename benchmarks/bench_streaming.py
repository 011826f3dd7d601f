"""``distill --streaming`` on a 1 GB text file against a 10 MB one: peak memory and the time to the first step.

Writes a generated corpus (one document per line: documents of :func:`studentbert.data.generate_corpus`, written
again and again in a new shuffled order, with a running number in every line so that no two lines are the same)
of about ``--big-mb`` and of ``--small-mb``, and a tiny random teacher with a WordPiece trained on the generated
text. Then, for each file, it runs ``python -m studentbert distill --streaming`` for ``--steps`` steps in a child
process, reading the child's memory (``VmHWM``, the peak resident set, from ``/proc/PID/status``; psutil's RSS as
a fallback) every 20 ms, and the seconds from the start of the child to the first checkpoint (``--save-every
1``: the first optimizer step is done). Python's start and the imports of torch and transformers are in that
time, as a user sees it.

The goals (printed beside the figures, never asserted: the machine may be busy, ``busy_cores`` records it):
the 1 GB run's peak RSS under ``--rss-bound-mb`` and within ``--rss-ratio`` of the 10 MB run's (memory does
not grow with the corpus), and its first step within ``--first-step-bound`` seconds. Writes
``benchmarks/results/streaming_cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchlib import command_line, hardware, write_json

from studentbert.speed import busy_cores

MB = 1 << 20


def write_corpus(path: Path, size_mb: float, documents: list[str]) -> int:
    """Write ``documents`` (lines of text) again and again, reshuffled each time, until ``size_mb``; returns bytes."""
    target, written, rep = int(size_mb * MB), 0, 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            order = list(range(len(documents)))
            random.Random(rep).shuffle(order)
            block = "".join(f"{documents[i]} Copy {rep}.\n" for i in order).encode("utf-8")
            if written + len(block) > target:  # the last block: up to the end of the line that reaches the size
                block = block[:block.index(b"\n", target - written) + 1]
            f.write(block.decode("utf-8"))
            written += len(block)
            rep += 1
    return path.stat().st_size


def make_teacher(root: Path, documents: list[str]) -> Path:
    """A random 2-layer BERT of width 64 with a 2,000-token WordPiece trained on ``documents``."""
    import torch

    from studentbert.bert import BertForPreTraining
    from studentbert.config import BertConfig
    from studentbert.data import train_wordpiece
    from studentbert.hf import save_pretrained

    tokenizer = train_wordpiece(documents[:2000], vocab_size=2000, output_dir=root / "tokenizer")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
                        max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    save_pretrained(BertForPreTraining(config), root / "teacher", tokenizer)
    return root / "teacher"


def _peak_kib(pid: int) -> int:
    """The process's peak resident set so far (KiB): ``VmHWM``, or psutil's current RSS where there is none."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss // 1024
    except Exception:  # the process is gone, or no psutil
        return 0


def run_distill(teacher: Path, corpus: Path, out: Path, steps: int, threads: int) -> dict:
    """One ``distill --streaming`` child: peak RSS, seconds to the first step, steps done, wall seconds."""
    command = [sys.executable, "-m", "studentbert", "distill", "--teacher", str(teacher), "--corpus", str(corpus),
               "--streaming", "--output-dir", str(out), "--restart", "--max-steps", str(steps), "--batch-size", "32",
               "--max-length", "128", "--student-layers", "1", "--heldout-documents", "50", "--eval-every", "0",
               "--save-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false"}
    checkpoint = out / "checkpoint.pt"
    checkpoint.unlink(missing_ok=True)
    t0 = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak, first = 0, None
    while child.poll() is None:
        peak = max(peak, _peak_kib(child.pid))
        if first is None and checkpoint.exists():
            first = time.perf_counter() - t0
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    err = child.stderr.read()
    if child.returncode != 0:
        raise SystemExit(f"distill failed ({child.returncode}): {err[-2000:]}")
    results = json.loads((out / "results.json").read_text())
    return {"command": " ".join(command[1:]), "file_bytes": corpus.stat().st_size, "peak_rss_mb": round(peak / 1024, 1),
            "seconds_to_first_step": round(first, 2) if first is not None else None, "steps": results["steps"],
            "wall_seconds": round(wall, 2)}


def import_seconds(threads: int) -> float:
    """Seconds a child takes to start Python and import what ``distill`` imports (part of the time to the first step)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import studentbert.cli, studentbert.distill, accelerate, transformers"],
                   env=env, check=True)
    return round(time.perf_counter() - t0, 2)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--big-mb", type=float, default=1024.0, help="size of the large corpus file (MB)")
    p.add_argument("--small-mb", type=float, default=10.0, help="size of the small corpus file (MB)")
    p.add_argument("--steps", type=int, default=5, help="distillation steps per run")
    p.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS of the child")
    p.add_argument("--dir", type=Path, help="where the files go (default: a temporary directory, removed after)")
    p.add_argument("--rss-bound-mb", type=float, default=1024.0, help="goal: the large run's peak RSS below this")
    p.add_argument("--rss-ratio", type=float, default=1.25, help="goal: large / small peak RSS at most this")
    p.add_argument("--first-step-bound", type=float, default=60.0, help="goal: seconds to the first step, large file")
    p.add_argument("--json", help="output file (default: benchmarks/results/streaming_cpu.json; '' for none)")
    args = p.parse_args(argv)
    from studentbert.data import generate_corpus

    started = time.perf_counter()
    busy_before = busy_cores()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        documents = [" ".join(d) for d in generate_corpus(5000, seed=0)]
        teacher = make_teacher(root, documents)
        runs = {}
        for name, size in (("small", args.small_mb), ("large", args.big_mb)):
            t = time.perf_counter()
            corpus = root / f"corpus_{name}.txt"
            n = write_corpus(corpus, size, documents)
            print(f"{name}: wrote {n / MB:.1f} MB in {time.perf_counter() - t:.1f} s", flush=True)
            runs[name] = run_distill(teacher, corpus, root / f"run_{name}", args.steps, args.threads)
            runs[name]["seconds_to_import"] = import_seconds(args.threads)  # right after, on the same load
            print(f"{name}: {json.dumps(runs[name])}", flush=True)
            corpus.unlink()
    small, large = runs["small"], runs["large"]
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    checks = {
        "large_peak_rss_mb": (large["peak_rss_mb"], f"< {args.rss_bound_mb:g}", large["peak_rss_mb"] < args.rss_bound_mb),
        "peak_rss_large_over_small": (round(ratio, 3), f"<= {args.rss_ratio:g}", ratio <= args.rss_ratio),
        "large_seconds_to_first_step": (large["seconds_to_first_step"], f"<= {args.first_step_bound:g}",
                                        (large["seconds_to_first_step"] or 1e9) <= args.first_step_bound),
        "large_file_over_peak_rss": (round(large["file_bytes"] / MB / large["peak_rss_mb"], 2), "(a ratio)", None),
    }
    print(f"\n{'figure':32} {'value':>10}  goal")
    for key, (value, goal, met) in checks.items():
        verdict = "" if met is None else ("met" if met else "NOT met")
        print(f"{key:32} {value!s:>10}  {goal} {verdict}")
    print(f"{'small_seconds_to_first_step':32} {small['seconds_to_first_step']!s:>10}  (for comparison)")
    for name, r in runs.items():
        print(f"{name + '_seconds_to_import':32} {r['seconds_to_import']!s:>10}  (Python and the imports alone)")
    result = {
        "benchmark": "streaming", "command": command_line("bench_streaming.py", argv), "hardware": hardware("cpu"),
        "busy_cores_before": busy_before, "busy_cores_after": busy_cores(), "steps": args.steps,
        "runs": runs, "checks": {k: {"value": v, "goal": g, "met": m} for k, (v, g, m) in checks.items()},
        "goal": {"target": args.rss_bound_mb, "direction": "lower", "metric": "peak RSS (MB) of the 1 GB run; "
                 f"also <= {args.rss_ratio}x the 10 MB run's, first step <= {args.first_step_bound} s"},
        "passed": all(m for _, _, m in checks.values() if m is not None),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    write_json(result, args.json, "streaming_cpu.json")
    return result


if __name__ == "__main__":
    main()
