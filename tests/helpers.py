"""Small pieces that several test files share (pytest puts ``tests/`` on ``sys.path``)."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from studentbert.cli import main

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def benchmark(name: str):
    """Import ``benchmarks/<name>.py`` (the scripts import their helpers, like ``benchlib``, as top-level modules,
    so their folder goes on ``sys.path``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads, then restore the number there was (tiny models on a shared 2-core machine
    stall less on one thread; a module-scoped fixture of a test file wraps its tests in this)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class RandomMaskCollate:
    """Pads and masks 15% of tokens with its own generator (like the MLM collator), so resume must restore it."""

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, examples):
        L = max(len(e["input_ids"]) for e in examples)
        ids = torch.zeros(len(examples), L, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, e in enumerate(examples):
            ids[i, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
            mask[i, : len(e["input_ids"])] = 1
        chosen = (torch.rand(ids.shape, generator=self.generator) < 0.15) & mask.bool()
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        return {"input_ids": ids.masked_fill(chosen, 1), "attention_mask": mask, "labels": labels}


def cli_runner(capsys):
    """``run(*args) -> (exit status, stderr)`` of ``python -m studentbert ARGS``, in this process."""

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        status = main(list(args))
        return status, capsys.readouterr().err

    return run


def one_line(err: str) -> str:
    """The single ``error: ...`` line a user error prints (progress bars aside), with no traceback."""
    lines = [line for line in err.splitlines() if line.strip() and "it/s" not in line and "%|" not in line]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]
