"""Task-agnostic distillation end to end on a small corpus, and its errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import transformers

import studentbert as sb
from studentbert.artifacts import corpus, tokenizer_for
from studentbert.data import MLMCollator
from studentbert.data.segments import build_segment_examples
from studentbert.distill import DistillationStep
from studentbert.distill import distill as distill_on
from studentbert.hf import load_teacher
from studentbert.losses import cosine_loss, hard_loss, soft_target_loss
from studentbert.student_init import make_student
from studentbert.triple_loss import DistillationLossWeights


def small_profile() -> sb.Profile:
    p = sb.get_profile("tiny")
    return p.replace(
        data=dataclasses.replace(p.data, num_documents=300, heldout_documents=40, vocab_size=600),
        teacher=p.teacher.replace(hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64),
        student_layers=2,
        pretrain=dataclasses.replace(p.pretrain, max_steps=10, batch_size=8, eval_every=0, save_every=10),
        distill=dataclasses.replace(p.distill, max_steps=8, batch_size=8, eval_every=4, save_every=4, log_every=2),
    )


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDENTBERT_HOME", str(home))
        from studentbert.pretrain import pretrain

        documents, heldout = corpus(small_profile())
        return pretrain(small_profile(), home / "teacher", documents=documents, heldout=heldout,
                        tokenizer=tokenizer_for(small_profile())), home


def distill(profile, teacher, output_dir, **kwargs):
    """The distillation stage on the profile's corpus."""
    documents, heldout = corpus(profile)
    return distill_on(profile, teacher, output_dir, documents=documents, heldout=heldout, **kwargs)


def test_distilled_student_loads_with_transformers_and_matches(teacher_dir, tmp_path, monkeypatch):
    path, home = teacher_dir
    monkeypatch.setenv("STUDENTBERT_HOME", str(home))
    out = distill(small_profile(), path, tmp_path / "student")
    results = json.loads((out.parent / "results.json").read_text())
    assert results["steps"] == 8 and results["weights"]["alpha_ce"] == 5.0
    hf = transformers.AutoModelForMaskedLM.from_pretrained(out).eval()
    assert type(hf).__name__ == "DistilBertForMaskedLM" and hf.config.n_layers == 2
    ours = sb.load_pretrained(out)
    tok = transformers.AutoTokenizer.from_pretrained(out)
    batch = tok(["the dog runs", "a cat near the old bridge sleeps"], padding=True, return_tensors="pt")
    with torch.no_grad():
        diff = (hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                - ours(batch["input_ids"], batch["attention_mask"]).mlm_logits)[batch["attention_mask"].bool()]
    assert diff.abs().max() < 1e-5
    rows = [json.loads(x) for x in (out.parent / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["split"] == "train"]
    assert {"loss_soft", "loss_hard", "loss_cos"} <= set(train[0])


@pytest.mark.parametrize("restrict", [False, True])
def test_distillation_step_is_the_triple_loss(teacher_dir, restrict):
    path, _ = teacher_dir
    teacher = load_teacher(path)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    student = make_student(teacher, 2).eval()
    examples = build_segment_examples([["the dog runs .", "the cats sleep ."], ["we cook soup ."]], tok, 16)
    batch = MLMCollator(tok, seed=0, return_token_type_ids=False)([examples[i] for i in range(len(examples))])
    step = DistillationStep(teacher, sb.DistillationLoss(), restrict_ce_to_mask=restrict)
    loss, terms = step(student, batch)
    # by hand, from full (B, L, V) outputs
    mask = batch["attention_mask"].bool()
    rows = (batch["labels"] != -100) if restrict else mask
    with torch.no_grad():
        t = teacher(batch["input_ids"], batch["attention_mask"])
        s = student(batch["input_ids"], batch["attention_mask"])
    soft = soft_target_loss(s.mlm_logits[rows], t.mlm_logits[rows], 2.0)
    hard = hard_loss(s.mlm_logits[rows], batch["labels"][rows])
    cos = cosine_loss(s.encoder.last_hidden_state, t.encoder.last_hidden_state, batch["attention_mask"])
    assert loss.item() == pytest.approx((5 * soft + 2 * hard + cos).item(), abs=1e-5)
    assert terms["loss_soft"] == pytest.approx(soft.item(), abs=1e-5)
    assert not any(p.requires_grad for p in teacher.parameters())  # the teacher is frozen


def test_resumed_distillation_equals_uninterrupted(teacher_dir, tmp_path, monkeypatch):
    path, home = teacher_dir
    monkeypatch.setenv("STUDENTBERT_HOME", str(home))
    a = distill(small_profile(), path, tmp_path / "a")
    distill(small_profile(), path, tmp_path / "b", stop_after=3)
    b = distill(small_profile(), path, tmp_path / "b")
    sa, sb_ = sb.load_pretrained(a).state_dict(), sb.load_pretrained(b).state_dict()
    assert all(torch.equal(sa[k], sb_[k]) for k in sa)


def test_teacher_that_is_not_a_bert_is_refused(tmp_path: Path):
    transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ValueError, match="Expected a BERT or DistilBERT checkpoint"):
        load_teacher(tmp_path / "gpt2")
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2,
                                                           intermediate_size=32, max_position_embeddings=16))
    sb.save_pretrained(student, tmp_path / "distil")
    with pytest.raises(ValueError, match="not a BERT teacher"):
        load_teacher(tmp_path / "distil")


def test_student_of_another_width_or_vocabulary_is_refused():
    teacher = sb.BertForPreTraining(sb.BertConfig(vocab_size=50, hidden_size=16, num_layers=2, num_heads=2,
                                                  intermediate_size=32, max_position_embeddings=16))
    for change, message in ((dict(vocab_size=60), "vocabularies differ"), (dict(hidden_size=8), "hidden_size differs")):
        cfg = sb.DistilBertConfig.from_teacher(teacher.config).replace(**change)
        with pytest.raises(sb.IncompatibleModelsError, match=message):
            sb.init_student_from_teacher(teacher, sb.DistilBertForMaskedLM(cfg))
    with pytest.raises(ValueError, match="init must be 'teacher' or 'random'"):
        make_student(teacher, 1, init="zeros")


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(temperature=0.0), "emperature"), (dict(alpha_ce=0, alpha_mlm=0, alpha_cos=0), "sum to zero")],
)
def test_bad_loss_settings_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DistillationLossWeights(**kwargs)


def test_cli_distill_runs_and_refuses_bad_settings(teacher_dir, tmp_path, monkeypatch, capsys):
    from studentbert.cli import main

    path, home = teacher_dir
    monkeypatch.setenv("STUDENTBERT_HOME", str(home))
    monkeypatch.setattr("studentbert.cli.get_profile", lambda name: small_profile())
    out = tmp_path / "cli"
    assert main(["distill", "--teacher", str(path), "--output-dir", str(out), "--max-steps", "2",
                 "--alpha-cos", "0"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 2 and results["weights"]["alpha_cos"] == 0
    capsys.readouterr()
    assert main(["distill", "--teacher", str(path), "--output-dir", str(tmp_path / "x"), "--temperature", "0"]) == 2
    assert "emperature" in capsys.readouterr().err


def test_mlm_only_step_needs_no_teacher(teacher_dir):
    path, _ = teacher_dir
    teacher = load_teacher(path)
    tok = transformers.AutoTokenizer.from_pretrained(path)
    student = make_student(teacher, 2, init="random").eval()
    examples = build_segment_examples([["the dog runs .", "the cats sleep ."]], tok, 16)
    batch = MLMCollator(tok, seed=0, return_token_type_ids=False)([examples[i] for i in range(len(examples))])
    step = DistillationStep(teacher, sb.DistillationLoss(alpha_ce=0, alpha_mlm=1, alpha_cos=0))
    step.teacher = None  # any use of the teacher would fail
    loss, _ = step(student, batch)
    with torch.no_grad():
        logits = student(batch["input_ids"], batch["attention_mask"]).mlm_logits
    m = batch["attention_mask"].bool()
    assert loss.item() == pytest.approx(hard_loss(logits[m], batch["labels"][m]).item(), abs=1e-5)
