"""A tiny, fully deterministic training run, launched by ``tests/test_ddp.py`` in one or two processes.

    python tests/ddp_worker.py OUT.json                                      # one process
    torchrun --standalone --nproc_per_node=2 tests/ddp_worker.py OUT.json    # two processes (DDP, gloo)
    python tests/ddp_worker.py OUT.json --finetune MODEL_DIR                 # fine-tuning (studentbert.finetune)

With ``--finetune``, it fine-tunes the BERT in ``MODEL_DIR`` (dropout 0) with :func:`studentbert.finetune.finetune`
on generated reviews (global batch 8) and writes the world size, the logged per-step loss/lr/grad-norm and the
saved classifier's directory. Cross-entropy is a mean over examples, so the two halves of a global batch give
the global loss whatever their lengths.

Trains a seeded tiny :class:`studentbert.BertForPreTraining` for ``--steps`` steps with
:class:`studentbert.training.Trainer` (global batch 8, MLM + NSP loss, like pretraining) and, from the main
process, writes ``OUT.json``: the logged per-step loss/lr/grad-norm trajectory (``metrics.jsonl``), every
rank's own local losses and batch sizes, every rank's checksum of its final weights, the world size and the
type of ``trainer.model``. The final weights are in ``<OUT>_run/checkpoint.pt`` (the Trainer's checkpoint).

Why the one- and two-process runs are comparable step by step:

* No randomness differs between them: dropout is 0 (each process would draw its own dropout masks) and the
  masking is a fixed function of the example (position ``i`` of example ``e`` is masked iff
  ``(e + i) % 7 == 0``), so the two halves of a global batch are exactly the rows of the one-process batch.
* Every example has the SAME length (14, a multiple of 7), so every example has the same number of tokens
  (no padding) and exactly 2 masked tokens. The loss is a mean over masked tokens (MLM) plus a mean over
  examples (NSP); DDP averages the two processes' gradients, i.e. it follows the gradient of the MEAN of
  the two local losses. That mean equals the one-process loss of the whole global batch only when each
  process's share carries the same number of loss terms (a mean of means is the overall mean only with
  equal counts) -- which equal lengths and a fixed masking density guarantee. With ragged lengths the
  per-process token counts differ and the two runs would follow (slightly) different objectives.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F

import studentbert as sb
from studentbert.training import METRICS, TrainConfig, Trainer

VOCAB, LENGTH, N_EXAMPLES, MASK_ID = 50, 14, 64, 1


def make_dataset() -> list[dict]:
    """Deterministic examples of identical length, two segments each, with an NSP label."""
    g = torch.Generator().manual_seed(1234)
    data = []
    for e in range(N_EXAMPLES):
        ids = torch.randint(2, VOCAB, (LENGTH,), generator=g).tolist()
        data.append({"id": e, "input_ids": ids, "token_type_ids": [0] * (LENGTH // 2) + [1] * (LENGTH // 2),
                     "next_sentence_label": e % 2})
    return data


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    """Stack (no padding is ever needed) and mask a fixed pattern: positions i with (id + i) % 7 == 0."""
    ids = torch.tensor([e["input_ids"] for e in examples])
    positions = torch.arange(LENGTH)
    chosen = torch.stack([(e["id"] + positions) % 7 == 0 for e in examples])
    return {
        "input_ids": ids.masked_fill(chosen, MASK_ID),
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.tensor([e["token_type_ids"] for e in examples]),
        "labels": torch.where(chosen, ids, torch.full_like(ids, -100)),
        "next_sentence_label": torch.tensor([e["next_sentence_label"] for e in examples]),
    }


class RecordingLoss:
    """MLM + NSP loss (as :func:`studentbert.pretrain.pretraining_loss`); remembers this rank's local values."""

    def __init__(self) -> None:
        self.local_losses: list[float] = []
        self.batch_sizes: list[int] = []

    def __call__(self, model, batch):
        positions = batch["labels"] != -100
        out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], mlm_positions=positions)
        mlm = F.cross_entropy(out.mlm_logits.float(), batch["labels"][positions])
        nsp = F.cross_entropy(out.nsp_logits.float(), batch["next_sentence_label"])
        loss = mlm + nsp
        self.local_losses.append(loss.item())
        self.batch_sizes.append(batch["input_ids"].shape[0])
        return loss, {"mlm_loss": mlm.item(), "nsp_loss": nsp.item()}


def weight_checksum(model: torch.nn.Module) -> float:
    return float(sum(p.detach().double().sum() for p in model.state_dict().values()))


def finetune_run(out: Path, model_dir: str, steps: int) -> None:
    from accelerate import PartialState

    from studentbert.checkpoint import read_metrics
    from studentbert.data.sentiment import generate_sentiment
    from studentbert.finetune import finetune

    cfg = TrainConfig(max_steps=steps, batch_size=8, learning_rate=5e-3, warmup_ratio=0.3, eval_every=0,
                      save_every=0, log_every=1, seed=0, mixed_precision="no")
    run_dir = out.parent / (out.stem + "_run")
    results = finetune(model_dir, generate_sentiment(64, seed=0), generate_sentiment(32, seed=1), run_dir, cfg,
                       max_length=24, resume="restart")
    state = PartialState()
    if state.is_main_process:
        train = read_metrics(run_dir / METRICS)["train"]
        out.write_text(json.dumps({
            "world_size": state.num_processes, "env_world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "steps": [r["step"] for r in train], "loss": [r["loss"] for r in train], "lr": [r["lr"] for r in train],
            "grad_norm": [r["grad_norm"] for r in train], "model_dir": results["model_dir"],
        }, indent=1))
    state.wait_for_everyone()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path, help="JSON file to write (from the main process)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--finetune", metavar="MODEL_DIR", help="fine-tune this BERT directory instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.finetune:
        finetune_run(args.out, args.finetune, args.steps)
        return

    torch.manual_seed(0)
    model = sb.BertForPreTraining(sb.BertConfig(
        vocab_size=VOCAB, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32,
        max_position_embeddings=16, hidden_dropout=0.0, attention_dropout=0.0))
    cfg = TrainConfig(max_steps=args.steps, batch_size=8, learning_rate=5e-3, warmup_ratio=0.3,
                      max_grad_norm=1.0, eval_every=0, save_every=0, log_every=1, seed=0,
                      mixed_precision="no", group_by_length=False)
    loss_fn = RecordingLoss()
    run_dir = args.out.parent / (args.out.stem + "_run")
    trainer = Trainer(model, loss_fn, make_dataset(), collate, cfg, run_dir, description="ddp-check")
    trainer.train(resume=False)

    acc = trainer.accelerator
    per_rank = {"rank": acc.process_index, "local_losses": loss_fn.local_losses,
                "batch_sizes": loss_fn.batch_sizes, "weight_checksum": weight_checksum(model)}
    if acc.num_processes > 1:
        gathered: list = [None] * acc.num_processes
        torch.distributed.all_gather_object(gathered, per_rank)
        backend = torch.distributed.get_backend()
    else:
        gathered, backend = [per_rank], None
    if acc.is_main_process:
        rows = [json.loads(line) for line in (run_dir / METRICS).read_text().splitlines()]
        train = [r for r in rows if r.get("split") == "train"]
        args.out.write_text(json.dumps({
            "world_size": acc.num_processes,
            "env_world_size": int(os.environ.get("WORLD_SIZE", "1")),
            "distributed_type": str(acc.distributed_type),
            "backend": backend,
            "model_type": type(trainer.model).__name__,
            "steps": [r["step"] for r in train],
            "loss": [r["loss"] for r in train],
            "lr": [r["lr"] for r in train],
            "grad_norm": [r["grad_norm"] for r in train],
            "ranks": gathered,
            "checkpoint": str(run_dir / "checkpoint.pt"),
        }, indent=1))
    acc.wait_for_everyone()
    # Free the DDP wrapper (its C++ Reducer) while the process group is alive. Freed after
    # destroy_process_group, the Reducer drops the group's last reference and its destructor joins gloo's worker
    # thread while holding the GIL, which that thread may need to finish its last barrier: the process then
    # hangs at exit (seen about once in ten runs on 2 cores).
    acc.free_memory()
    del trainer
    gc.collect()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
