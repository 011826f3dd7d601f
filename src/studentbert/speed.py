"""Timing side by side: one interleaved timing helper, and the CPU inference speed of classifiers.

A timing on a shared machine is a measurement, not a fact: another job can take a core at any moment. So
everything that compares speeds times the contenders in the same rounds, alternately, the order rotating at
every repetition (:func:`interleaved`): a change in the machine's load hits every contender alike. The
benchmarks, the chapters and :func:`studentbert.experiments.compare` all time this way; none asserts a time.
"""

from __future__ import annotations

import functools
import os
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .convert import from_transformers
from .encoder import count_parameters
from .hf import load_classifier


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def busy_cores(seconds: float = 0.5) -> float:
    """How many of the machine's cores other work kept busy over the next ``seconds`` (0.0 where unknown).

    Read from ``/proc/stat`` (Linux) while this process sleeps, so what it counts is other processes' work.
    ``scripts/run_book.py`` records it beside each chapter's time and allows for it in the chapter's hard
    limit: two torch threads on two cores that a busy loop also wants wait on each other, and a training step
    then takes about 5x its quiet time.
    """
    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields[:8]), fields[3] + fields[4]  # all jiffies (without guest time), idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    if total1 <= total0:
        return 0.0
    return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)


def interleaved(
    runs: Mapping[str, Callable[[], object]], reps: int, warmup: int = 0, device: torch.device | str = "cpu",
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, list[float]]:
    """Time each callable ``reps`` times, interleaved; return the seconds of every repetition, per name.

    After ``warmup`` untimed rounds, repetition ``r`` runs the callables in order, rotated by ``r`` (with two:
    A B, B A, A B, ...), so that neither always runs first. On a GPU the device is synchronised before
    and after each call, so that a time covers the work and not just its launch.
    """
    names = list(runs)
    for _ in range(warmup):
        for name in names:
            runs[name]()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            synchronize(device)
            t0 = clock()
            runs[name]()
            synchronize(device)
            times[name].append(clock() - t0)
    return times


def summary(seconds: Sequence[float]) -> dict[str, Any]:
    """Median, minimum and every repetition of a list of times, in milliseconds."""
    return {"median_ms": 1e3 * statistics.median(seconds), "min_ms": 1e3 * min(seconds),
            "all_ms": [1e3 * s for s in seconds]}


def parameter_count(model: torch.nn.Module) -> int:
    """Parameters of a ``transformers`` BERT/DistilBERT, each tied matrix counted once (as
    :func:`~studentbert.encoder.count_parameters` counts ours); any other module: all its parameters."""
    try:
        return count_parameters(from_transformers(model))
    except (TypeError, ValueError):
        return sum(p.numel() for p in model.parameters())


def inference_speed(
    model_dirs: Mapping[str, str | Path],
    batch_sizes: Sequence[int] = (1, 32),
    seq_len: int = 48,
    repeats: int = 20,
    warmup: int = 3,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """CPU inference latency and throughput of several sequence classifiers, measured side by side.

    Every model gets the same inputs: ``batch_size`` sequences of ``seq_len`` random token ids with a full
    attention mask (no padding). After ``warmup`` passes of every model, the ``repeats`` timed passes
    alternate between the models (their order rotating at every repetition), so that a change in the machine's
    load during the run hits every model alike. Forward passes run under ``torch.inference_mode`` in eval mode,
    with the process's current ``torch.get_num_threads()``.

    Args:
        model_dirs: ``{name: directory}``; ``AutoModelForSequenceClassification`` loads each (a pretraining
            checkpoint gets a random head, which costs the same time).
        batch_sizes: the batch sizes to time.
        seq_len: tokens per sequence.
        repeats: timed passes per model and batch size; the median is reported.
        warmup: untimed passes per model and batch size first.
        seed: of the random inputs.

    Returns:
        ``{name: {"parameters", "num_layers", "latency_ms_batch<b>" (median), "throughput_batch<b>"
        (examples/s at the median), "min_latency_ms_batch<b>", ...}}``, plus ``"_setup"``: threads, seq_len,
        repeats. On a machine shared with other jobs the median includes the time the process waited for a core;
        the minimum is the best estimate of the model's own cost.
    """
    if not model_dirs:
        raise ValueError("inference_speed needs at least one model directory.")
    if repeats < 1 or warmup < 0 or seq_len < 1 or not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(
            f"Need repeats >= 1, warmup >= 0, seq_len >= 1 and batch sizes >= 1; got repeats={repeats}, "
            f"warmup={warmup}, seq_len={seq_len}, batch_sizes={tuple(batch_sizes)}.")
    models, results = {}, {}
    for name, directory in model_dirs.items():
        model = load_classifier(directory, name).to("cpu").eval()
        positions = model.config.max_position_embeddings
        if seq_len > positions:
            raise ValueError(f"seq_len={seq_len} exceeds the {positions} positions of {name} ({directory}).")
        models[name] = model
        results[name] = {"parameters": parameter_count(model), "num_layers": model.config.num_hidden_layers,
                         "model_dir": str(directory)}
    vocab = min(m.config.vocab_size for m in models.values())
    generator = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        for b in batch_sizes:
            ids = torch.randint(5, max(6, vocab), (b, seq_len), generator=generator)
            mask = torch.ones_like(ids)
            times = interleaved({name: functools.partial(m, input_ids=ids, attention_mask=mask)
                                 for name, m in models.items()}, repeats, warmup)
            for name in models:
                median = statistics.median(times[name])
                results[name][f"latency_ms_batch{b}"] = 1000 * median
                results[name][f"throughput_batch{b}"] = b / median
                results[name][f"min_latency_ms_batch{b}"] = 1000 * min(times[name])
    results["_setup"] = {"threads": torch.get_num_threads(), "seq_len": seq_len, "repeats": repeats,
                         "warmup": warmup, "batch_sizes": list(batch_sizes), "device": "cpu"}
    return results
