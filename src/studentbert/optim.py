"""The optimisation settings of a run (:class:`TrainConfig`) and what they drive: AdamW and its parameter groups,
the learning-rate schedule, the seeded batch order (or a stream of examples in its place).

:class:`studentbert.training.Trainer` uses these; the benchmarks and chapter 4 use them on their own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn


@dataclass
class TrainConfig:
    """Optimisation settings of one run.

    Attributes:
        max_steps: optimizer steps in all.
        batch_size: global batch size: examples per optimizer step, all processes and micro-batches together.
        learning_rate: peak learning rate, reached after the warmup.
        warmup_ratio: fraction of ``max_steps`` over which the learning rate rises linearly from 0.
        weight_decay: AdamW's decoupled weight decay (not applied to biases and LayerNorm).
        max_grad_norm: gradient clipping threshold (global L2 norm).
        eval_every, save_every, log_every: in steps; 0 disables.
        seed: seeds the data order, the masking and the dropout.
        mixed_precision: ``"auto"`` (bf16 on a GPU, none on a CPU), ``"bf16"``, ``"fp16"`` (a CUDA GPU only;
            dynamic loss scaling by accelerate's GradScaler) or ``"no"``.
        group_by_length: batch examples of similar length together (less padding), shuffling the batches.
        compile: wrap the model in ``torch.compile``.
        gradient_accumulation_steps: micro-batches per optimizer step; each holds
            ``batch_size / (processes * gradient_accumulation_steps)`` examples.
        report_to: an experiment tracker for accelerate's ``log_with`` (``"tensorboard"``, ``"wandb"``: the
            package must be installed); None (the default) writes only ``metrics.jsonl``.
    """

    max_steps: int = 1000
    batch_size: int = 32
    learning_rate: float = 1e-4
    warmup_ratio: float = 0.06
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_every: int = 200
    save_every: int = 200
    log_every: int = 10
    seed: int = 0
    mixed_precision: str = "auto"
    group_by_length: bool = True
    compile: bool = False
    gradient_accumulation_steps: int = 1
    report_to: str | None = None

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError(f"max_steps and batch_size must be >= 1, got {self.max_steps} and {self.batch_size}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        if self.mixed_precision not in ("auto", "bf16", "fp16", "no"):
            raise ValueError(
                f"mixed_precision must be 'auto', 'bf16', 'fp16' or 'no', got {self.mixed_precision!r}.")
        k = self.gradient_accumulation_steps
        if k < 1 or self.batch_size % k:
            raise ValueError(f"gradient_accumulation_steps={k} must be >= 1 and divide batch_size={self.batch_size}.")


@runtime_checkable
class ExampleStream(Protocol):
    """Examples that are read, not indexed, in place of a batch order (a corpus larger than memory:
    :class:`studentbert.data.streaming.TextStream`); :class:`~studentbert.training.Trainer` keeps its position
    (``state_dict``) in the checkpoint, so that a resume continues where the run stopped."""

    def next_examples(self, n: int) -> list[dict[str, Any]]: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def batch_order(lengths: Sequence[int], batch_size: int, seed: int, epoch: int, group_by_length: bool) -> list[list[int]]:
    """The batches of one epoch, as lists of example indices, reproducible from ``(seed, epoch)``.

    With ``group_by_length``, examples are shuffled, cut into windows of 50 batches, sorted by length within
    each window, batched, and the batches shuffled: padding shrinks and the order stays random.
    """
    g = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = torch.randperm(len(lengths), generator=g).tolist()
    if group_by_length:
        window = batch_size * 50
        order = [i for s in range(0, len(order), window)
                 for i in sorted(order[s:s + window], key=lambda i: -lengths[i])]
    batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    batches = [b for b in batches if len(b) == batch_size] or batches  # drop the ragged last batch
    perm = torch.randperm(len(batches), generator=g).tolist()
    return [batches[i] for i in perm]


def batch_shares(lengths: Sequence[int], batch_size: int, seed: int, group_by_length: bool, step: int, rank: int = 0,
                 world: int = 1) -> Iterator[list[int]]:
    """Process ``rank``'s share ``batch[rank::world]`` of every global batch of :func:`batch_order`, epoch after
    epoch, from the batch of optimizer step ``step`` on (a resume starts where the run stopped)."""
    per_epoch = len(batch_order(lengths, batch_size, seed, 0, group_by_length))
    epoch, skip = divmod(step, per_epoch)
    while True:
        for batch in batch_order(lengths, batch_size, seed, epoch, group_by_length)[skip:]:
            yield batch[rank::world]
        epoch, skip = epoch + 1, 0


def apply_schedule_overrides(optimizer: torch.optim.Optimizer, scheduler, config: TrainConfig) -> None:
    """After a checkpoint is loaded: ``config``'s peak learning rate and schedule length take effect now
    (``scheduler``: the ``LambdaLR`` of :func:`linear_schedule`, as accelerate wraps it or bare)."""
    sched = getattr(scheduler, "scheduler", scheduler)
    warmup = int(config.warmup_ratio * config.max_steps)
    sched.base_lrs = [config.learning_rate] * len(optimizer.param_groups)
    for group in optimizer.param_groups:
        group["initial_lr"] = config.learning_rate
        group["lr"] = config.learning_rate * linear_schedule(sched.last_epoch, config.max_steps, warmup)
    sched._last_lr = [g["lr"] for g in optimizer.param_groups]


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups: decay the matrices, not the biases, LayerNorm weights or embeddings' padding."""
    decay, no_decay, seen = [], [], set()
    for name, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (no_decay if p.ndim < 2 or "norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def linear_schedule(step: int, max_steps: int, warmup_steps: int) -> float:
    """Learning-rate multiplier: linear warmup from 0 to 1, then linear decay to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (max_steps - step) / max(1, max_steps - warmup_steps))


def fused_adamw_available(device: torch.device | str) -> bool:
    """Whether this torch has a fused AdamW kernel for ``device`` (CUDA; CPU too since torch 2.4)."""
    try:
        torch.optim.AdamW([torch.zeros(1, device=device, requires_grad=True)], fused=True)
    except (RuntimeError, ValueError):
        return False
    return True


def make_adamw(params, learning_rate: float, device: torch.device | str) -> torch.optim.AdamW:
    """The optimizer of every run: AdamW (betas 0.9, 0.999; eps 1e-6), fused into one kernel where available."""
    fused = {"fused": True} if fused_adamw_available(device) else {}
    return torch.optim.AdamW(params, lr=learning_rate, betas=(0.9, 0.999), eps=1e-6, **fused)
