"""Pretrain the teacher with the tiny profile and print what it reaches next to the baselines.

    python benchmarks/bench_pretrain.py [--profile tiny] [--json benchmarks/results/pretrain_tiny.json]

Prints the held-out MLM accuracy next to the unigram baseline (always guess the most frequent token, at the
same masks) and the NSP accuracy next to chance, and the wall-clock time of the run. The run goes into a
fresh temporary directory, so nothing cached is reused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

from studentbert import get_profile
from studentbert.pretrain import pretrain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="tiny")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "pretrain_tiny.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDENTBERT_HOME"] = tmp
        t0 = time.perf_counter()
        out = pretrain(get_profile(args.profile), Path(tmp) / "run")
        wall = time.perf_counter() - t0
        results = json.loads((out.parent / "results.json").read_text())
    rows = [
        ("MLM accuracy (held out)", results["heldout_mlm_accuracy"], "unigram baseline", results["unigram_mlm_accuracy"]),
        ("NSP accuracy (held out)", results["heldout_nsp_accuracy"], "chance", results["chance_nsp_accuracy"]),
    ]
    print(f"{'metric':<26}{'teacher':>10}  {'baseline':<18}{'value':>8}{'ratio':>8}")
    for name, ours, base_name, base in rows:
        print(f"{name:<26}{ours:>10.3f}  {base_name:<18}{base:>8.3f}{ours / base:>8.2f}")
    print(f"wall-clock time, corpus + tokenizer + pretraining: {wall:.1f} s ({results['steps']} steps, "
          f"{torch.get_num_threads()} threads)")
    record = {
        "command": " ".join([sys.executable, *sys.argv]), "profile": args.profile, "wall_seconds": wall,
        **results, "mlm_accuracy_over_unigram": results["heldout_mlm_accuracy"] / results["unigram_mlm_accuracy"],
        "torch": torch.__version__, "transformers": transformers.__version__, "cpu": platform.processor() or
        platform.machine(), "threads": torch.get_num_threads(),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
