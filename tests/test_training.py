"""The training loop: resume equals an uninterrupted run, the schedule, the batch order, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import studentbert as sb
from studentbert.training import TrainConfig, Trainer, batch_order, linear_schedule


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


def mlm_loss(model, batch):
    out = model(batch["input_ids"], batch["attention_mask"])
    logits = out.mlm_logits
    return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100), {}


def make(tmp: Path, steps: int = 8, lr: float = 1e-3):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    # constant sequences (s, s, s, ...): a masked token is predictable from any other token
    starts = torch.randint(0, 48, (40,), generator=g).tolist()
    sizes = torch.randint(5, 16, (40,), generator=g).tolist()
    data = [{"input_ids": [2 + s] * n} for s, n in zip(starts, sizes, strict=True)]
    model = sb.BertForPreTraining(sb.BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                                                intermediate_size=32, max_position_embeddings=16))
    cfg = TrainConfig(max_steps=steps, batch_size=8, learning_rate=lr, eval_every=0, save_every=3, log_every=1)
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
    with pytest.raises(ValueError, match="belongs to a run with max_steps=3"):
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
