"""The training loop: resume equals an uninterrupted run, the schedule, the batch order, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import RandomMaskCollate

import studentbert as sb
from studentbert.training import TrainConfig, Trainer, batch_order, linear_schedule


def mlm_loss(model, batch):
    out = model(batch["input_ids"], batch["attention_mask"])
    logits = out.mlm_logits
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100), {}


def make(tmp: Path, steps: int = 8, lr: float = 1e-3, precision: str = "auto"):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    # constant sequences (s, s, s, ...): a masked token is predictable from any other token
    starts = torch.randint(0, 48, (40,), generator=g).tolist()
    sizes = torch.randint(5, 16, (40,), generator=g).tolist()
    data = [{"input_ids": [2 + s] * n} for s, n in zip(starts, sizes, strict=True)]
    model = sb.BertForPreTraining(sb.BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                                                intermediate_size=32, max_position_embeddings=16))
    cfg = TrainConfig(max_steps=steps, batch_size=8, learning_rate=lr, eval_every=0, save_every=3, log_every=1,
                      mixed_precision=precision)
    return Trainer(model, mlm_loss, data, RandomMaskCollate(), cfg, tmp, description="test"), model


def test_resumed_run_equals_uninterrupted_run(tmp_path: Path):
    straight, m1 = make(tmp_path / "a")
    straight.train()
    interrupted, _ = make(tmp_path / "b")
    interrupted.train(stop_after=5)  # as if killed after step 5 (after dropout, masking and data order moved on)
    resumed, m2 = make(tmp_path / "b")  # a fresh process: new model, new optimizer
    resumed.train(resume=True)
    assert resumed.step == 8
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    lines = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 9))


def test_training_reduces_the_loss_and_logs(tmp_path: Path):
    trainer, _ = make(tmp_path, steps=80, lr=5e-3)
    trainer.train()
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    first, last = (sum(r["loss"] for r in rows[i:i + 10]) / 10 for i in (0, 70))
    assert last < first - 0.5, (first, last)
    assert all({"lr", "grad_norm", "tokens_per_s"} <= set(r) for r in rows)


def test_fresh_run_refuses_to_overwrite_a_checkpoint(tmp_path: Path):
    trainer, _ = make(tmp_path, steps=3)
    trainer.train()
    again, _ = make(tmp_path, steps=3)
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        again.train(resume=False)
    other, _ = make(tmp_path, steps=4)
    with pytest.raises(ValueError, match=r"written with other settings: max_steps: 3 -> 4\."):
        other.train(resume=True)


def test_empty_dataset_is_refused(tmp_path: Path):
    model = sb.BertForPreTraining(sb.BertConfig(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2,
                                                intermediate_size=32, max_position_embeddings=16))
    with pytest.raises(ValueError, match="dataset is empty"):
        Trainer(model, mlm_loss, [], RandomMaskCollate(), TrainConfig(), tmp_path)


def test_schedule_warms_up_then_decays_to_zero():
    values = [linear_schedule(s, 100, 10) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[99] == pytest.approx(1 / 90)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))


def test_batch_order_is_a_reproducible_permutation_grouped_by_length():
    lengths = [i % 37 for i in range(1000)]
    a = batch_order(lengths, 10, seed=3, epoch=0, group_by_length=True)
    assert a == batch_order(lengths, 10, seed=3, epoch=0, group_by_length=True)
    assert a != batch_order(lengths, 10, seed=3, epoch=1, group_by_length=True)
    assert sorted(i for b in a for i in b) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in a) / len(a)
    random_spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b)
                        for b in batch_order(lengths, 10, 3, 0, False)) / len(a)
    assert spread < random_spread / 4  # grouping removes most of the padding


# ---------------------------------------------------------------------------------------- gradient accumulation

LENGTHS = [5, 9, 12, 7, 12, 6, 10, 8, 11, 4, 12, 9, 5, 7, 12, 10]


def fixed_mask_collate(examples):
    """Pads; masks every 3rd position (a fixed function of the example: no RNG, so any split of a batch into
    micro-batches masks the same tokens); every real token is a target."""
    L = max(len(e["input_ids"]) for e in examples)
    ids = torch.zeros(len(examples), L, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, e in enumerate(examples):
        ids[i, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
        mask[i, : len(e["input_ids"])] = 1
    chosen = (torch.arange(L) % 3 == 0) & mask.bool()
    return {"input_ids": ids.masked_fill(chosen, 1), "attention_mask": mask,
            "labels": torch.where(mask.bool(), ids, torch.full_like(ids, -100))}


class PerExampleLoss:
    """Cross-entropy averaged over each example's tokens, then over the examples: a per-example mean.
    Records the micro-batch sizes it saw."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, model, batch):
        self.sizes.append(batch["input_ids"].shape[0])
        logits = model(batch["input_ids"], batch["attention_mask"]).mlm_logits  # (B, L, V)
        ce = F.cross_entropy(logits.transpose(1, 2), batch["labels"], ignore_index=-100, reduction="none")  # (B, L)
        mask = batch["attention_mask"].to(ce.dtype)
        return ((ce * mask).sum(1) / mask.sum(1)).mean(), {}


def accumulation_run(tmp: Path, accumulation: int, steps: int = 6):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    data = [{"input_ids": torch.randint(2, 50, (n,), generator=g).tolist()} for n in LENGTHS * 2]
    model = sb.BertForPreTraining(sb.BertConfig(
        vocab_size=50, hidden_size=16, num_layers=2, num_heads=2, intermediate_size=32, max_position_embeddings=16,
        hidden_dropout=0.0, attention_dropout=0.0)).double()
    cfg = TrainConfig(max_steps=steps, batch_size=8, learning_rate=1e-2, warmup_ratio=0.0, max_grad_norm=1e9,
                      eval_every=0, save_every=0, log_every=1, mixed_precision="no", group_by_length=False,
                      gradient_accumulation_steps=accumulation)
    loss = PerExampleLoss()
    Trainer(model, loss, data, fixed_mask_collate, cfg, tmp, description="acc").train(resume=False)
    rows = [json.loads(x) for x in (tmp / "metrics.jsonl").read_text().splitlines()]
    return model, loss.sizes, rows


def test_accumulation_equals_one_large_batch(tmp_path: Path):
    """4 accumulated micro-batches of 2 examples give the weights of one batch of 8, after 6 AdamW steps.

    float64 model, no dropout, no clipping (AdamW is nearly scale-invariant, so clipping would hide a loss that
    is not divided by the number of micro-batches), a per-example mean loss on examples of different lengths.
    Tolerance: max abs weight difference < 1e-10 (float64 rounding; measured ~4e-16). Measured mutations:
    forgetting the 1/k loss scaling changes the weights by ~1e-2 (AdamW's eps against tiny gradients) and the
    logged gradient norm 4x; training k times on the first micro-batch changes them by ~7e-2.
    """
    big, big_sizes, big_rows = accumulation_run(tmp_path / "k1", 1)
    acc, acc_sizes, acc_rows = accumulation_run(tmp_path / "k4", 4)
    assert big_sizes == [8] * 6 and acc_sizes == [2] * 24
    init, _, _ = accumulation_run(tmp_path / "k0", 1, steps=1)
    assert max((a - b).abs().max().item() for a, b in zip(big.parameters(), init.parameters(), strict=True)) > 1e-3
    diff = max((a - b).abs().max().item() for a, b in zip(big.parameters(), acc.parameters(), strict=True))
    assert diff < 1e-10, diff
    for r1, r4 in zip(big_rows, acc_rows, strict=True):  # the logged loss is the mean over the global batch
        assert r1["loss"] == pytest.approx(r4["loss"], rel=1e-12)
        assert r1["grad_norm"] == pytest.approx(r4["grad_norm"], rel=1e-9)


def test_accumulation_and_precision_settings_are_checked(tmp_path: Path):
    with pytest.raises(ValueError, match="gradient_accumulation_steps=3 must be >= 1 and divide batch_size=8"):
        TrainConfig(batch_size=8, gradient_accumulation_steps=3)
    with pytest.raises(ValueError, match="'auto', 'bf16', 'fp16' or 'no'"):
        TrainConfig(mixed_precision="fp8")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: fp16 is allowed here")
    model = sb.BertForPreTraining(sb.BertConfig(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2,
                                                intermediate_size=32, max_position_embeddings=16))
    with pytest.raises(ValueError, match="'fp16' needs a CUDA GPU.*use 'bf16' or 'no'"):
        Trainer(model, mlm_loss, [{"input_ids": [2, 3]}] * 8, RandomMaskCollate(),
                TrainConfig(batch_size=8, mixed_precision="fp16"), tmp_path)



def test_runs_of_different_precisions_in_one_process(tmp_path: Path):
    """accelerate keeps one precision per process; runs of a notebook may differ (fp32, then bf16, then fp32)."""
    for i, precision in enumerate(("no", "bf16", "no")):
        trainer, _ = make(tmp_path / str(i), steps=2, precision=precision)
        assert trainer.accelerator.mixed_precision == precision
        trainer.train()
        assert trainer.step == 2
