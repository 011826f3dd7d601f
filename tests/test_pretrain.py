"""Pretraining end to end on a small corpus: the saved teacher is an ordinary transformers model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import transformers

import studentbert as sb
from studentbert.artifacts import corpus, tokenizer_for
from studentbert.cli import main
from studentbert.data import MLMCollator, build_pretraining_examples
from studentbert.evaluation import evaluate_pretraining, topic_rule_baseline
from studentbert.pretrain import pretraining_loss


def small_profile() -> sb.Profile:
    p = sb.get_profile("tiny")
    return p.replace(
        data=dataclasses.replace(p.data, num_documents=300, heldout_documents=40, vocab_size=600),
        teacher=p.teacher.replace(hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64),
        pretrain=dataclasses.replace(p.pretrain, max_steps=12, batch_size=8, eval_every=6, save_every=6,
                                     log_every=3),
    )


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STUDENTBERT_HOME", str(home))
        from studentbert.pretrain import pretrain

        profile = small_profile()
        tok = tokenizer_for(profile)
        documents, heldout_docs = corpus(profile)
        out = pretrain(profile, home / "run", documents=documents, heldout=heldout_docs, tokenizer=tok)
    return profile, out, tok, heldout_docs


def test_pretraining_writes_a_transformers_model_and_results(pretrained):
    profile, out, tok, _ = pretrained
    results = json.loads((out.parent / "results.json").read_text())
    assert results["steps"] == 12 and 0 <= results["heldout_mlm_accuracy"] <= 1
    assert 0 < results["unigram_mlm_accuracy"] < 1 and results["chance_nsp_accuracy"] == 0.5
    rows = [json.loads(x) for x in (out.parent / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == [3, 6, 9, 12]
    assert [r["step"] for r in rows if r["split"] == "eval"] == [6, 12]
    assert transformers.AutoTokenizer.from_pretrained(out)("a b")["input_ids"] == tok("a b")["input_ids"]


def test_transformers_alone_reproduces_our_mlm_accuracy(pretrained):
    profile, out, tok, heldout_docs = pretrained
    heldout = build_pretraining_examples(heldout_docs, tok, max_length=profile.data.max_length,
                                         seed=profile.data.seed + 1)
    ours = sb.load_pretrained(out)
    measured = evaluate_pretraining(ours, heldout, tok)
    hf = transformers.AutoModelForPreTraining.from_pretrained(out).eval()
    collate = MLMCollator(tok, seed=1234)  # the evaluation's masks
    correct = total = nsp = 0
    with torch.no_grad():
        for s in range(0, len(heldout), 64):
            batch = collate([heldout[i] for i in range(s, min(s + 64, len(heldout)))])
            o = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   token_type_ids=batch["token_type_ids"])
            m = batch["labels"] != -100
            correct += (o.prediction_logits.argmax(-1)[m] == batch["labels"][m]).sum().item()
            total += m.sum().item()
            nsp += (o.seq_relationship_logits.argmax(-1) == batch["next_sentence_label"]).sum().item()
    assert correct / total == pytest.approx(measured["mlm_accuracy"], abs=1e-9)
    assert nsp / len(heldout) == pytest.approx(measured["nsp_accuracy"], abs=1e-9)
    results = json.loads((out.parent / "results.json").read_text())
    assert results["heldout_mlm_accuracy"] == pytest.approx(measured["mlm_accuracy"], abs=1e-9)


def test_pretraining_loss_is_mlm_plus_nsp_cross_entropy(pretrained):
    profile, out, tok, heldout_docs = pretrained
    model = sb.load_pretrained(out)
    examples = build_pretraining_examples(heldout_docs, tok, max_length=profile.data.max_length)
    batch = MLMCollator(tok, seed=0)([examples[i] for i in range(4)])
    loss, terms = pretraining_loss(model, batch)
    full = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    m = batch["labels"] != -100
    mlm = torch.nn.functional.cross_entropy(full.mlm_logits[m], batch["labels"][m])
    nsp = torch.nn.functional.cross_entropy(full.nsp_logits, batch["next_sentence_label"])
    assert loss.item() == pytest.approx((mlm + nsp).item(), abs=1e-5)
    assert terms["mlm_loss"] == pytest.approx(mlm.item(), abs=1e-5)


def test_cli_pretrain_resumes(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("studentbert.cli.get_profile", lambda name: small_profile())
    out = tmp_path / "cli"
    assert main(["pretrain", "--profile", "tiny", "--output-dir", str(out), "--max-steps", "6"]) == 0
    assert "saved:" in capsys.readouterr().out
    assert (out / "model" / "config.json").is_file()
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert state["step"] == 6
    assert main(["pretrain", "--profile", "tiny", "--output-dir", str(out), "--max-steps", "6", "--no-resume"]) == 2
    assert "already holds a checkpoint" in capsys.readouterr().err


def test_topic_rule_baseline_counts_same_topic_as_is_next(pretrained):
    _, _, tok, _ = pretrained
    farm, kitchen = "The farmer fed the goats near the barn.", "The cook peeled the onions by the stove."
    assert sb.data.guess_topic(farm) == "animals" and sb.data.guess_topic(kitchen) == "cooking"
    IS, NOT = sb.data.IS_NEXT, sb.data.NOT_NEXT
    pairs = []
    for a, b, label in [(farm, farm, IS), (farm, kitchen, NOT), (farm, farm, NOT), (kitchen, farm, IS)]:
        enc = tok(a, b)
        pairs.append({"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"],
                      "next_sentence_label": label})
    assert topic_rule_baseline(pairs, tok) == 0.5  # right on the first two, wrong on the last two
