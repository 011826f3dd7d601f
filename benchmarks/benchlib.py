"""What the benchmarks share: a description of the hardware, interleaved timing, the JSON they write.

Every benchmark compares two (or more) things *side by side in one run*: the repetitions are interleaved
(A, B, then B, A, ...) so that a slow drift of a shared machine (another job, the clock) hits both alike.
Each side gets a median and a minimum; on a busy machine the minimum is the better estimate of the
undisturbed time (interference only ever adds time), the median the better estimate of typical time.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

from studentbert.hardware import cpu_name
from studentbert.speed import interleaved, summary, synchronize  # noqa: F401  (the benchmarks' timing)

RESULTS = Path(__file__).resolve().parent / "results"


def resolve_device(name: str) -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda was asked for, but torch sees no CUDA GPU here (torch.cuda.is_available() is False).")
    return torch.device(name)


def hardware(device: torch.device | str = "cpu") -> dict:
    """Where a measurement was taken: CPU model, cores, torch's threads, versions, and the GPU if one is used."""
    import studentbert

    info = {
        "device": str(device), "cpu": cpu_name(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
        "studentbert": studentbert.__version__, "gpu": None,
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if torch.device(device).type == "cuda":
        props = torch.cuda.get_device_properties(torch.device(device))
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                    gpu_count=torch.cuda.device_count())
    return info


def command_line(script: str, argv: list[str] | None) -> str:
    """The command that reproduces the run, typed from the repository root (``argv``: the script's arguments,
    None for the real command line)."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{script}", *args])


def write_json(result: dict, path: str | Path | None, default_name: str | None = None) -> None:
    """Write ``result`` to ``path``; ``None`` means ``benchmarks/results/<default_name>``, ``""`` skips."""
    if path is None and default_name:
        path = RESULTS / default_name
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {path}")


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value), minimum and maximum of repeated runs (seeds)."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}
