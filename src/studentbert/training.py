"""One training loop for pretraining, distillation and fine-tuning: checkpoints, resume, metrics, DDP.

At every optimizer step (:meth:`Trainer.train_step`) the loop takes the next global batch of a seeded,
resumable order, accumulates the gradients of this process's micro-batches under autocast (bf16 on a GPU
by default, fp16 with loss scaling on request, fp32 on a CPU), clips their norm, takes an AdamW step (fused
where torch has the kernel) and advances the warmup-then-linear-decay learning rate. Every ``eval_every`` steps
it evaluates, every ``save_every`` steps it writes a checkpoint (model, optimizer, schedule, loss scaler,
random states, position in the data, settings), and every line of metrics goes to ``metrics.jsonl``,
which the book plots.

Distribution goes through `accelerate` (``accelerate launch`` or ``torchrun`` start the
processes; :class:`accelerate.Accelerator` wraps the model in DDP): each process takes its
share of every global batch, and DDP averages the gradients.

Resuming is exact: an interrupted run resumed from its last checkpoint ends with the same
weights as an uninterrupted run (tested on CPU). The loop is also careful (``tests/FAULTS.md`` lists each
fault and its test): a non-finite loss or gradient stops it before the weights are touched and no checkpoint
with non-finite weights is ever written; a resume with changed settings is refused, naming each change;
SIGTERM or SIGINT end the current step, save and exit; the output directory is locked against a second run;
checkpoints are written atomically (:mod:`studentbert.checkpoint`). The optimizer, its schedule and the
batch order are :mod:`studentbert.optim`'s.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import (
    CHECKPOINT,
    METRICS,
    OVERRIDABLE,
    RESTART_ADVICE,
    SAFE_TO_CHANGE,
    OutputDirLock,
    SettingsChangedError,
    allow_resume_changes,
    allowed_resume_changes,
    check_resume_settings,
    read_checkpoint,
    remove_stale_temporaries,
    rng_state,
    set_aside,
    set_rng_state,
    truncate_metrics,
    write_checkpoint,
)
from .hardware import accelerator
from .optim import (
    ExampleStream,
    TrainConfig,
    apply_schedule_overrides,
    batch_order,
    batch_shares,
    linear_schedule,
    make_adamw,
    parameter_groups,
)
from .stopping import StopSignals

__all__ = ["OVERRIDABLE", "SAFE_TO_CHANGE", "EvalFn", "ExampleStream", "LossFn", "TrainConfig", "Trainer",
           "allow_resume_changes", "batch_order", "linear_schedule", "make_adamw", "parameter_groups"]


LossFn = Callable[[nn.Module, dict[str, torch.Tensor]], tuple[torch.Tensor, dict[str, float]]]
EvalFn = Callable[[nn.Module], dict[str, float]]


class Trainer:
    """Train ``model`` on ``dataset`` with ``loss_fn``; write checkpoints and metrics to ``output_dir``.

    :meth:`train` runs the loop (resume, logging, evaluation, checkpoints); :meth:`train_step` is one
    optimizer step of it, with gradient accumulation, clipping and the non-finite checks.

    Args:
        model: the module whose parameters are trained.
        loss_fn: ``(model, batch) -> (loss, {name: float})``; the model it receives may be DDP-wrapped.
        dataset: indexable examples (a ``datasets.Dataset`` or a list of dicts), or an :class:`ExampleStream`
            (every process reads the same stream and keeps its share of each global batch; no length grouping).
        collate: turns a list of examples into a batch of tensors. If it has a ``generator`` attribute
            (a ``torch.Generator``, e.g. the masking RNG), its state is checkpointed too.
        config: :class:`TrainConfig`.
        output_dir: where ``checkpoint.pt`` and ``metrics.jsonl`` go.
        evaluate: optional ``(unwrapped model) -> metrics``, called every ``eval_every`` steps and at the end.
        lengths: example lengths for length grouping (default: ``len(example["input_ids"])``).
        settings: JSON-able description of everything else that determines the result (model config, data,
            teacher, loss weights...). Stored in the checkpoint with the whole ``config``; a resume with any
            difference in either is refused (except :data:`SAFE_TO_CHANGE` and explicit overrides).
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn,
        dataset: Sequence[dict[str, Any]] | ExampleStream,
        collate: Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]],
        config: TrainConfig,
        output_dir: str | Path,
        evaluate: EvalFn | None = None,
        lengths: Sequence[int] | None = None,
        description: str = "training",
        settings: dict[str, Any] | None = None,
    ) -> None:
        self.stream = dataset if isinstance(dataset, ExampleStream) else None
        if self.stream is None and len(dataset) == 0:
            raise ValueError("The training dataset is empty: there is nothing to train on. Check the corpus.")
        try:
            self.settings = json.loads(json.dumps(settings)) if settings is not None else None
        except (TypeError, ValueError) as e:
            raise ValueError(f"settings must be JSON-able (numbers, strings, lists, dicts): {e}") from None
        self.config = config
        self.output_dir = Path(output_dir)
        self.loss_fn, self.evaluate_fn, self.collate = loss_fn, evaluate, collate
        self.dataset, self.description = dataset, description
        cuda = torch.cuda.is_available()
        precision = ("bf16" if cuda else "no") if config.mixed_precision == "auto" else config.mixed_precision
        if precision == "fp16" and not cuda:
            raise ValueError("mixed_precision='fp16' needs a CUDA GPU (loss scaling); on this machine use 'bf16' or 'no'.")
        # step_scheduler_with_optimizer=False: by default a prepared scheduler steps num_processes times per
        # optimizer step (accelerate assumes per-process batches); our batch_size is global, so step once.
        self.accelerator = accelerator(precision, step_scheduler_with_optimizer=False, log_with=config.report_to,
                                       project_dir=str(self.output_dir) if config.report_to else None)
        world, k = self.accelerator.num_processes, config.gradient_accumulation_steps
        if config.batch_size % (world * k):
            raise ValueError(f"batch_size={config.batch_size} must be divisible by processes x gradient_accumulation"
                             f"_steps = {world} x {k}: each process's micro-batch must be whole.")
        if lengths is None and self.stream is None:
            lengths = [len(ex["input_ids"]) for ex in dataset] if config.group_by_length else [0] * len(dataset)
        self.lengths = list(lengths or [])
        if self.stream is None and len(self.lengths) < config.batch_size:
            raise ValueError(f"The dataset has {len(self.lengths)} examples, fewer than one batch of "
                             f"{config.batch_size}: lower batch_size or provide more data.")
        self.raw_model = model
        opt_model = torch.compile(model) if config.compile else model
        optimizer = make_adamw(parameter_groups(model, config.weight_decay), config.learning_rate,
                               self.accelerator.device)
        warmup = int(config.warmup_ratio * config.max_steps)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: linear_schedule(s, config.max_steps, warmup))
        self.model, self.optimizer, self.scheduler = self.accelerator.prepare(opt_model, optimizer, scheduler)
        self.step = 0
        self.saved_step: int | None = None  # step of the last checkpoint on disk (written or loaded)
        self.history: list[dict[str, Any]] = []  # resumes that changed a setting on purpose
        self._override: dict[str, Any] | None = None
        self._signals = StopSignals()

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def _batches(self) -> Iterator[list[int] | list[dict[str, Any]]]:
        """This process's share of every global batch, from step ``self.step`` on: indices, or a stream's examples."""
        c, rank, world = self.config, self.accelerator.process_index, self.accelerator.num_processes
        while self.stream is not None:
            yield self.stream.next_examples(c.batch_size)[rank::world]
        yield from batch_shares(self.lengths, c.batch_size, c.seed, c.group_by_length, self.step, rank, world)

    def _last_checkpoint(self) -> str:
        if self.saved_step is None:
            return f"no checkpoint exists yet in {self.output_dir}"
        return f"the last checkpoint (step {self.saved_step}) in {self.output_dir} is kept"

    def save_checkpoint(self) -> None:
        """Write everything needed to continue exactly where the run stands (atomically, durably).

        Raises:
            FloatingPointError: a weight is not finite; nothing is written.
            NoSpaceError: the disk is full; the previous checkpoint is intact.
        """
        for name, t in self.raw_model.state_dict().items():
            if t.is_floating_point() and not bool(torch.isfinite(t).all()):
                raise FloatingPointError(
                    f"The weight {name} is not finite after step {self.step}: no checkpoint was written and "
                    f"{self._last_checkpoint()}; {RESTART_ADVICE}.")
        self.accelerator.wait_for_everyone()
        if not self.is_main:
            self.saved_step = self.step
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        gen = getattr(self.collate, "generator", None)
        scaler = self.accelerator.scaler
        state = {
            "step": self.step, "model": self.raw_model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "scaler": scaler.state_dict() if scaler is not None else None,
            "rng": rng_state(), "collate_generator": gen.get_state() if gen is not None else None,
            "config": asdict(self.config), "settings": self.settings, "history": self.history,
            "stream": self.stream.state_dict() if self.stream is not None else None,
        }
        write_checkpoint(state, self.output_dir / CHECKPOINT)
        self.saved_step = self.step

    def _check_settings(self, state: dict[str, Any], allow: frozenset[str]) -> dict[str, list]:
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}  # older checkpoints lack new fields
        return check_resume_settings(state, asdict(self.config), defaults, self.settings, allow, self.output_dir)

    def load_checkpoint(self, allow_changes: Iterable[str] = ()) -> bool:
        """Restore the last checkpoint in ``output_dir``, if any; True if one was restored.

        Raises:
            CorruptCheckpointError: the file cannot be read.
            SettingsChangedError: the checkpoint was written with other settings (see :meth:`train`).
        """
        path = self.output_dir / CHECKPOINT
        if not path.is_file():
            return False
        state = read_checkpoint(path)
        changes = self._check_settings(state, frozenset(allow_changes))
        try:
            self.raw_model.load_state_dict(state["model"])
        except RuntimeError as e:
            raise SettingsChangedError(
                f"The checkpoint in {path} does not match this model ({str(e).splitlines()[0]}): it was written for "
                f"another configuration; use another --output-dir, or start over with --restart.") from None
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler") is not None and self.accelerator.scaler is not None:
            self.accelerator.scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        gen = getattr(self.collate, "generator", None)
        if gen is not None and state["collate_generator"] is not None:
            gen.set_state(state["collate_generator"])
        if self.stream is not None and state.get("stream") is not None:
            self.stream.load_state_dict(state["stream"])
        self.step = self.saved_step = state["step"]
        self.history = list(state.get("history") or [])
        self._override = None
        if changes:
            apply_schedule_overrides(self.optimizer, self.scheduler, self.config)
            self._override = {"step": self.step, "changes": changes, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}
            self.history.append(self._override)
        return True

    def _log(self, record: dict[str, Any]) -> None:
        if self.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / METRICS, "a") as f:
                f.write(json.dumps(record) + "\n")
            if self.config.report_to:
                numbers = {k: v for k, v in record.items() if isinstance(v, (int, float)) and k != "step"}
                self.accelerator.log({f"{record.get('split', 'train')}/{k}": v for k, v in numbers.items()},
                                     step=record.get("step"))

    def _evaluate(self, log: bool = True) -> dict[str, float]:
        if self.evaluate_fn is None:
            return {}
        self.raw_model.eval()
        with torch.no_grad(), self.accelerator.autocast():
            metrics = self.evaluate_fn(self.raw_model)
        self.raw_model.train()
        if log:
            self._log({"step": self.step, "split": "eval", **metrics})
        return metrics

    def train(self, resume: bool | str = True, stop_after: int | None = None,
              allow_changes: Iterable[str] | None = None) -> dict[str, float]:
        """Run to ``max_steps`` (or stop after ``stop_after`` steps, as if interrupted); return the last eval.

        Args:
            resume: ``True``: continue from ``output_dir/checkpoint.pt`` when it exists (refusing any change of
                a setting that changes the result); ``False``: refuse to overwrite an existing checkpoint, so no
                work is lost by accident; ``"restart"``: start afresh, moving an existing ``checkpoint.pt`` and
                ``metrics.jsonl`` aside to ``*.old`` (one generation is kept).
            stop_after: save and return after this many steps.
            allow_changes: keys of :data:`OVERRIDABLE` that this resume may change (default: those of an
                enclosing :func:`allow_resume_changes`); each change is recorded in ``history`` (checkpoint)
                and as a ``split="override"`` record in ``metrics.jsonl``.

        Raises:
            OutputDirLockedError: another run holds ``output_dir``.
            SettingsChangedError, CorruptCheckpointError, FileExistsError: see ``resume``.
            FloatingPointError: the loss or the gradient norm is not finite (nothing is written after it).
            KeyboardInterrupt, SystemExit: after SIGINT, SIGTERM: a checkpoint of the finished step is saved.
        """
        if resume not in (True, False, "restart"):
            raise ValueError(f"resume must be True, False or 'restart', got {resume!r}.")
        allow = allowed_resume_changes(allow_changes)
        lock = OutputDirLock(self.output_dir).acquire() if self.is_main else None
        try:
            if lock is not None:
                remove_stale_temporaries(self.output_dir)
                if self.config.report_to:
                    self.accelerator.init_trackers("studentbert", config=asdict(self.config))
            with self._signals.caught():
                return self._train(resume, stop_after, allow)
        finally:
            if lock is not None:
                if self.config.report_to:
                    self.accelerator.end_training()
                lock.release()

    def _start(self, resume: bool | str, allow: frozenset[str]) -> None:
        path = self.output_dir / CHECKPOINT
        if resume == "restart":
            if self.is_main:
                set_aside(path)
                set_aside(self.output_dir / METRICS)
            self.accelerator.wait_for_everyone()
        elif resume:
            self.load_checkpoint(allow)
        elif path.exists():
            raise FileExistsError(
                f"{self.output_dir} already holds a checkpoint; resume it (resume=True), start over with --restart "
                f"(resume='restart'), or choose another output directory.")
        if self.is_main:
            if self.step == 0:
                (self.output_dir / METRICS).unlink(missing_ok=True)
            else:
                truncate_metrics(self.output_dir / METRICS, self.step)
            if self._override is not None:
                self._log({"split": "override", **self._override})

    def _diverged(self, what: str) -> FloatingPointError:
        return FloatingPointError(
            f"{what} at step {self.step + 1}: training stopped before the weights were updated and "
            f"{self._last_checkpoint()}; {RESTART_ADVICE}.")

    def train_step(self, share: list[int] | list[dict[str, Any]]) -> tuple[torch.Tensor, dict[str, float], int]:
        """One optimizer step on ``share``, this process's example indices of one global batch (``step`` += 1)
        (or, from a stream, its examples themselves).

        The share is cut into k = ``gradient_accumulation_steps`` micro-batches; each one's loss is computed
        under autocast and back-propagated divided by k, so the gradients add up to those of the mean loss (for
        a mean over examples: of one batch of the whole share; a mean over MLM's masked tokens becomes a mean
        of micro-batch means, as under DDP across processes). DDP all-reduces on the last micro-batch only
        (``no_sync`` before it; accelerate's ``accumulate()`` is not used: the checkpoint would have to carry
        its micro-step count). Then the gradient norm is clipped to ``max_grad_norm``, AdamW steps (under fp16
        the GradScaler skips a step whose gradients overflow), the learning rate follows its schedule, and the
        gradients are cleared. Returns ``(grad_norm, metrics, tokens)``: the gradient norm before clipping
        (0-dim tensor); ``"loss"`` and the loss function's metrics, averaged over the micro-batches; the
        number of non-padding tokens.

        Raises:
            FloatingPointError: the loss or the gradient norm is not finite; the weights were not updated.
        """
        acc, k = self.accelerator, self.config.gradient_accumulation_steps
        m, metrics, tokens = len(share) // k, {}, 0
        for j in range(k):  # micro-batches; gradients are all-reduced on the last one only
            batch = self.collate([i if isinstance(i, dict) else self.dataset[i] for i in share[j * m:(j + 1) * m]])
            # counted on the host, before the copy: no wait for the device
            tokens += int(batch["attention_mask"].sum()) if "attention_mask" in batch else 0
            batch = {key: v.to(acc.device, non_blocking=True) for key, v in batch.items()}
            with contextlib.nullcontext() if j == k - 1 else acc.no_sync(self.model):
                with acc.autocast():
                    loss, terms = self.loss_fn(self.model, batch)  # loss: 0-dim tensor
                value = loss.item()
                if not math.isfinite(value):
                    raise self._diverged(f"The loss is {value}")
                acc.backward(loss / k)
            for key, v in {"loss": value, **terms}.items():
                metrics[key] = metrics.get(key, 0.0) + float(v) / k
        grad_norm = acc.clip_grad_norm_(self.model.parameters(), self.config.max_grad_norm)
        if acc.scaler is None and not math.isfinite(float(grad_norm)):  # fp16: the scaler skips the step
            raise self._diverged(f"The gradient norm is {float(grad_norm)}")
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return grad_norm, metrics, tokens

    def _train(self, resume: bool | str, stop_after: int | None, allow: frozenset[str]) -> dict[str, float]:
        from tqdm.auto import tqdm

        c = self.config
        self._start(resume, allow)
        finished_before = self.step >= c.max_steps
        self.raw_model.train()
        device, acc = self.accelerator.device, self.accelerator
        batches = self._batches()
        running: dict[str, float] = {}
        n_running, tokens, t0 = 0, 0, time.perf_counter()
        bar = tqdm(total=c.max_steps, initial=self.step, desc=self.description, disable=not self.is_main,
                   dynamic_ncols=True)
        last_eval: dict[str, float] = {}
        while self.step < c.max_steps:
            grad_norm, metrics, n_tokens = self.train_step(next(batches))
            for key, v in metrics.items():
                running[key] = running.get(key, 0.0) + v
            tokens += n_tokens
            bar.update(1)
            n_running += 1
            if c.log_every and (self.step % c.log_every == 0 or self.step == c.max_steps):
                elapsed = time.perf_counter() - t0
                record = {key: v / n_running for key, v in running.items()}
                if acc.num_processes > 1:  # each process saw its share: log the mean over all
                    keys = sorted(record)
                    means = acc.reduce(torch.tensor([record[key] for key in keys], dtype=torch.float64,
                                                    device=device), "mean")
                    record = dict(zip(keys, means.tolist(), strict=True))
                record.update(step=self.step, split="train", lr=self.scheduler.get_last_lr()[0],
                              grad_norm=float(grad_norm), tokens_per_s=tokens * acc.num_processes / elapsed)
                if acc.scaler is not None:
                    record["loss_scale"] = acc.scaler.get_scale()
                self._log(record)
                bar.set_postfix(loss=f"{record['loss']:.3f}")
                running, n_running, tokens, t0 = {}, 0, 0, time.perf_counter()
            if c.eval_every and self.step % c.eval_every == 0 and self.step < c.max_steps:
                last_eval = self._evaluate()
            if (c.save_every and self.step % c.save_every == 0) or self.step == c.max_steps:
                self.save_checkpoint()
            stop = self._signals.agreed(self.accelerator)
            if stop or (stop_after is not None and self.step >= stop_after):
                if self.saved_step != self.step:
                    self.save_checkpoint()
                bar.close()
                if stop:
                    self._signals.exit(f"stopped after step {self.step} with a checkpoint in {self.output_dir}; run "
                                       f"the same command again to resume.", self.is_main)
                return last_eval
        bar.close()
        return self._evaluate(log=not finished_before) or last_eval
