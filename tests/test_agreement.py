"""Teacher-student agreement (KL and top-1 agreement at the masked positions), and its place in a distillation run."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

import studentbert as sb
from studentbert.data import MLMCollator, train_wordpiece
from studentbert.data.segments import build_segment_examples
from studentbert.distill import distill
from studentbert.evaluation import evaluate_mlm, teacher_student_agreement
from studentbert.pretrain import pretrain
from studentbert.student_init import make_student

DOCUMENTS = [["the dog runs in the park .", "a cat sleeps near the old bridge ."],
             ["we cook soup with red beans .", "the soup is hot and the bread is fresh ."],
             ["the river is wide .", "boats go down the river to the sea ."]] * 8


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece([s for doc in DOCUMENTS for s in doc], vocab_size=120)


@pytest.fixture(scope="module")
def examples(tokenizer):
    return build_segment_examples(DOCUMENTS, tokenizer, max_length=24)


def tiny_teacher(vocab_size: int, seed: int = 0) -> sb.BertForPreTraining:
    torch.manual_seed(seed)
    return sb.BertForPreTraining(sb.BertConfig(vocab_size=vocab_size, hidden_size=16, num_layers=2, num_heads=2,
                                               intermediate_size=32, max_position_embeddings=32)).eval()


def test_a_model_agrees_with_itself(tokenizer, examples):
    teacher = tiny_teacher(len(tokenizer))
    same = make_student(teacher, teacher.config.num_layers)  # all layers, segment vector folded: the same function
    for student in (teacher, same):
        out = teacher_student_agreement(teacher, student, examples, tokenizer, batch_size=7)
        assert out["kl"] == pytest.approx(0.0, abs=1e-6)
        assert out["top1_agreement"] == 1.0


def test_agreement_matches_torch_kl_div_at_evaluate_mlms_masks(tokenizer, examples):
    teacher = tiny_teacher(len(tokenizer))
    student = make_student(teacher, 1, init="random", seed=3)
    student.train()
    out = teacher_student_agreement(teacher, student, examples, tokenizer, batch_size=5, seed=99)
    assert student.training and not teacher.training  # modes restored
    # by hand: batches of 5 masked by the collator evaluate_mlm uses (its generator runs on across batches), full
    # (B, L, V) logits, torch's kl_div summed over the masked positions
    collate = MLMCollator(tokenizer, seed=99, return_token_type_ids=False)
    student.eval()
    kl_sum, agree, n, correct = 0.0, 0, 0, 0
    for i in range(0, len(examples), 5):
        batch = collate([examples[j] for j in range(i, min(i + 5, len(examples)))])
        masked = batch["labels"] != -100
        with torch.no_grad():
            t = teacher(batch["input_ids"], batch["attention_mask"]).mlm_logits[masked]  # (M, V)
            s = student(batch["input_ids"], batch["attention_mask"]).mlm_logits[masked]
        kl_sum += F.kl_div(F.log_softmax(s, -1), F.log_softmax(t, -1), log_target=True, reduction="sum").item()
        agree += (t.argmax(-1) == s.argmax(-1)).sum().item()
        correct += (s.argmax(-1) == batch["labels"][masked]).sum().item()
        n += t.shape[0]
    assert out["kl"] == pytest.approx(kl_sum / n, rel=1e-4)
    assert out["top1_agreement"] == pytest.approx(agree / n)
    assert 0 < out["kl"] and 0 <= out["top1_agreement"] < 1
    # the same masks as evaluate_mlm: its accuracy is computed at exactly these positions
    assert evaluate_mlm(student, examples, tokenizer, batch_size=5, seed=99)["mlm_accuracy"] == pytest.approx(correct / n)

def test_distillation_logs_kl_and_agreement_at_every_evaluation(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))
    p = sb.get_profile("tiny")
    p = p.replace(
        data=dataclasses.replace(p.data, num_documents=120, heldout_documents=20, vocab_size=400),
        teacher=p.teacher.replace(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
        student_layers=1,
        pretrain=dataclasses.replace(p.pretrain, max_steps=2, batch_size=8, eval_every=0, save_every=2),
        distill=dataclasses.replace(p.distill, max_steps=4, batch_size=8, eval_every=2, save_every=4, log_every=2),
    )
    from studentbert.artifacts import corpus, tokenizer_for

    documents, heldout = corpus(p)
    teacher = pretrain(p, tmp_path / "teacher", documents=documents, heldout=heldout, tokenizer=tokenizer_for(p))
    out = distill(p, teacher, tmp_path / "student", documents=documents, heldout=heldout)
    rows = [json.loads(line) for line in (out.parent / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in rows if r["split"] == "eval"]
    assert [r["step"] for r in evals] == [2, 4]
    for r in evals:
        assert {"mlm_accuracy", "kl", "top1_agreement"} <= set(r)
        assert r["kl"] >= 0 and 0 <= r["top1_agreement"] <= 1
    results = json.loads((out.parent / "results.json").read_text())
    assert results["heldout_student_kl"] == pytest.approx(evals[-1]["kl"])
