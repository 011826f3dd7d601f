"""One training loop for pretraining, distillation and fine-tuning: checkpoints, resume, metrics, DDP.

What the loop does, in order, at every step: take the next batch of a seeded, resumable
order; compute the loss under bf16 autocast on a GPU (fp32 on a CPU); back-propagate;
clip the gradient norm; take an AdamW step (fused where torch has the kernel); advance the warmup-then-linear-decay
learning rate. Every ``eval_every`` steps it evaluates, every ``save_every`` steps it writes a
checkpoint (model, optimizer, schedule, random states, position in the data), and every line
of metrics goes to ``metrics.jsonl``, which the book plots.

Distribution goes through `accelerate` (``accelerate launch`` or ``torchrun`` start the
processes; :class:`accelerate.Accelerator` wraps the model in DDP): each process takes its
share of every global batch, and DDP averages the gradients.

Resuming is exact: an interrupted run resumed from its last checkpoint ends with the same
weights as an uninterrupted run (tested on CPU).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


@dataclass
class TrainConfig:
    """Optimisation settings of one run.

    Attributes:
        max_steps: optimizer steps in all.
        batch_size: global batch size (all processes together).
        learning_rate: peak learning rate, reached after the warmup.
        warmup_ratio: fraction of ``max_steps`` over which the learning rate rises linearly from 0.
        weight_decay: AdamW's decoupled weight decay (not applied to biases and LayerNorm).
        max_grad_norm: gradient clipping threshold (global L2 norm).
        eval_every, save_every, log_every: in steps; 0 disables.
        seed: seeds the data order, the masking and the dropout.
        mixed_precision: ``"auto"`` (bf16 on a GPU, none on a CPU), ``"bf16"`` or ``"no"``.
        group_by_length: batch examples of similar length together (less padding), shuffling the batches.
        compile: wrap the model in ``torch.compile``.
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

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError(f"max_steps and batch_size must be >= 1, got {self.max_steps} and {self.batch_size}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate}.")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}.")
        if self.mixed_precision not in ("auto", "bf16", "no"):
            raise ValueError(f"mixed_precision must be 'auto', 'bf16' or 'no', got {self.mixed_precision!r}.")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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


LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
EvalFn = Callable[[nn.Module], dict[str, float]]


class Trainer:
    """Train ``model`` on ``dataset`` with ``loss_fn``; write checkpoints and metrics to ``output_dir``.

    Args:
        model: the module whose parameters are trained.
        loss_fn: ``(model, batch) -> (loss, {name: float})``; the model it receives may be DDP-wrapped.
        dataset: indexable examples (a ``datasets.Dataset`` or a list of dicts).
        collate: turns a list of examples into a batch of tensors. If it has a ``generator`` attribute
            (a ``torch.Generator``, e.g. the masking RNG), its state is checkpointed too.
        config: :class:`TrainConfig`.
        output_dir: where ``checkpoint.pt`` and ``metrics.jsonl`` go.
        evaluate: optional ``(unwrapped model) -> metrics``, called every ``eval_every`` steps and at the end.
        lengths: example lengths for length grouping (default: ``len(example["input_ids"])``).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        dataset: Sequence[dict[str, Any]],
        collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        config: TrainConfig,
        output_dir: str | Path,
        evaluate: EvalFn | None = None,
        lengths: Sequence[int] | None = None,
        description: str = "training",
    ) -> None:
        from accelerate import Accelerator

        if len(dataset) == 0:
            raise ValueError("The training dataset is empty: there is nothing to train on. Check the corpus.")
        self.config = config
        self.output_dir = Path(output_dir)
        self.loss_fn, self.evaluate_fn, self.collate = loss_fn, evaluate, collate
        self.dataset, self.description = dataset, description
        cuda = torch.cuda.is_available()
        precision = ("bf16" if cuda else "no") if config.mixed_precision == "auto" else config.mixed_precision
        # step_scheduler_with_optimizer=False: by default a prepared scheduler steps num_processes times per
        # optimizer step (accelerate assumes per-process batches); our batch_size is global, so step once.
        self.accelerator = Accelerator(mixed_precision=precision, cpu=not cuda, step_scheduler_with_optimizer=False)
        world = self.accelerator.num_processes
        if config.batch_size % world:
            raise ValueError(f"batch_size={config.batch_size} must be divisible by the {world} processes.")
        if lengths is None:
            lengths = [len(ex["input_ids"]) for ex in dataset] if config.group_by_length else [0] * len(dataset)
        self.lengths = list(lengths)
        if len(self.lengths) < config.batch_size:
            raise ValueError(
                f"The dataset has {len(self.lengths)} examples, fewer than one batch of {config.batch_size}: "
                f"lower batch_size or provide more data."
            )
        self.raw_model = model
        opt_model = torch.compile(model) if config.compile else model
        optimizer = make_adamw(parameter_groups(model, config.weight_decay), config.learning_rate,
                               self.accelerator.device)
        warmup = int(config.warmup_ratio * config.max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: linear_schedule(s, config.max_steps, warmup))
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(opt_model, optimizer, scheduler)
        self.step = 0

    # ------------------------------------------------------------------------------------------ state

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def _batches(self) -> Iterator[list[int]]:
        """This process's share of every global batch, from step ``self.step`` on."""
        c, rank, world = self.config, self.accelerator.process_index, self.accelerator.num_processes
        per_epoch = len(batch_order(self.lengths, c.batch_size, c.seed, 0, c.group_by_length))
        epoch, skip = divmod(self.step, per_epoch)
        while True:
            for batch in batch_order(self.lengths, c.batch_size, c.seed, epoch, c.group_by_length)[skip:]:
                yield batch[rank::world]
            epoch, skip = epoch + 1, 0

    def save_checkpoint(self) -> None:
        """Write everything needed to continue exactly where the run stands (atomically)."""
        self.accelerator.wait_for_everyone()
        if not self.is_main:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        gen = getattr(self.collate, "generator", None)
        state = {
            "step": self.step,
            "model": self.raw_model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None},
            "collate_generator": gen.get_state() if gen is not None else None,
            "config": asdict(self.config),
        }
        tmp = self.output_dir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.output_dir / CHECKPOINT)

    def load_checkpoint(self) -> bool:
        """Restore the last checkpoint in ``output_dir``, if any; True if one was restored."""
        path = self.output_dir / CHECKPOINT
        if not path.is_file():
            return False
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state["config"]["max_steps"] != self.config.max_steps or state["config"]["seed"] != self.config.seed:
            raise ValueError(
                f"The checkpoint in {self.output_dir} belongs to a run with max_steps="
                f"{state['config']['max_steps']}, seed={state['config']['seed']}, not max_steps="
                f"{self.config.max_steps}, seed={self.config.seed}. Use another --output-dir or pass resume=False."
            )
        try:
            self.raw_model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise ValueError(
                f"The checkpoint in {path} does not match this model ({e}). It was written for another "
                f"configuration: use another --output-dir, or delete the checkpoint to start afresh."
            ) from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        random.setstate(state["rng"]["python"])
        np.random.set_state(state["rng"]["numpy"])
        if state["rng"]["cuda"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        gen = getattr(self.collate, "generator", None)
        if gen is not None and state["collate_generator"] is not None:
            gen.set_state(state["collate_generator"])
        self.step = state["step"]
        return True

    def _log(self, record: dict[str, Any]) -> None:
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / METRICS, "a") as f:
                f.write(json.dumps(record) + "\n")

    def _evaluate(self) -> dict[str, float]:
        if self.evaluate_fn is None:
            return {}
        self.raw_model.eval()
        with torch.no_grad(), self.accelerator.autocast():
            metrics = self.evaluate_fn(self.raw_model)
        self.raw_model.train()
        self._log({"step": self.step, "split": "eval", **metrics})
        return metrics

    # ------------------------------------------------------------------------------------------ loop

    def train(self, resume: bool = True, stop_after: int | None = None) -> dict[str, float]:
        """Run to ``max_steps`` (or stop after ``stop_after`` steps, as if interrupted); return the last eval.

        With ``resume``, continue from ``output_dir/checkpoint.pt`` when it exists; without, a fresh run
        refuses to overwrite a checkpoint, so no work is lost by accident.
        """
        from tqdm.auto import tqdm

        c = self.config
        if resume:
            self.load_checkpoint()
        elif (self.output_dir / CHECKPOINT).exists():
            raise FileExistsError(
                f"{self.output_dir} already holds a checkpoint; resume it (resume=True) or choose another output "
                f"directory.")
        if self.step == 0 and self.is_main and (self.output_dir / METRICS).exists():
            (self.output_dir / METRICS).unlink()
        self.raw_model.train()
        device = self.accelerator.device
        batches = self._batches()
        running: dict[str, float] = {}
        n_running, tokens, t0 = 0, 0, time.perf_counter()
        bar = tqdm(total=c.max_steps, initial=self.step, desc=self.description, disable=not self.is_main,
                   dynamic_ncols=True)
        last_eval: dict[str, float] = {}
        while self.step < c.max_steps:
            batch = self.collate([self.dataset[i] for i in next(batches)])
            # counted on the host, before the copy: no wait for the device
            tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else 0
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
            with self.accelerator.autocast():
                loss, metrics = self.loss_fn(self.model, batch)
            if not math.isfinite(loss.item()):
                self.save_checkpoint()
                raise FloatingPointError(
                    f"The loss is {loss.item()} at step {self.step}; the last checkpoint is kept in "
                    f"{self.output_dir}. Lower the learning rate or check the inputs.")
            self.accelerator.backward(loss)
            grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), c.max_grad_norm)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            bar.update(1)
            for k, v in {"loss": loss.item(), **metrics}.items():
                running[k] = running.get(k, 0.0) + float(v)
            n_running += 1
            if c.log_every and (self.step % c.log_every == 0 or self.step == c.max_steps):
                elapsed = time.perf_counter() - t0
                record = {k: v / n_running for k, v in running.items()}
                if self.accelerator.num_processes > 1:  # each process saw its share: log the mean over all
                    keys = sorted(record)
                    means = self.accelerator.reduce(
                        torch.tensor([record[k] for k in keys], dtype=torch.float64, device=device), "mean")
                    record = dict(zip(keys, means.tolist(), strict=True))
                record.update(step=self.step, split="train", lr=self.scheduler.get_last_lr()[0],
                              grad_norm=float(grad_norm), tokens_per_s=tokens * self.accelerator.num_processes / elapsed)
                self._log(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                running, n_running, tokens, t0 = {}, 0, 0, time.perf_counter()
            if c.eval_every and self.step % c.eval_every == 0 and self.step < c.max_steps:
                last_eval = self._evaluate()
            if (c.save_every and self.step % c.save_every == 0) or self.step == c.max_steps:
                self.save_checkpoint()
            if stop_after is not None and self.step >= stop_after:
                self.save_checkpoint()
                bar.close()
                return last_eval
        bar.close()
        return self._evaluate() or last_eval
