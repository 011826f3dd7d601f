"""``studentbert export``: the ONNX round trip of a small classifier (fp32 within 1e-4 of PyTorch, int8 agreement
reported), an encoder export, and one-line errors for bad inputs."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from studentbert import (  # noqa: E402
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    save_pretrained,
)
from studentbert.data import train_wordpiece  # noqa: E402
from studentbert.data.sentiment import generate_sentiment  # noqa: E402
from studentbert.export import (  # noqa: E402
    FP32_FILE,
    INT8_FILE,
    REPORT_FILE,
    add_export_parser,
    export_onnx,
    onnx_outputs,
    onnx_session,
    run_export,
)

SMALL = dict(vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
             max_position_embeddings=64)


@pytest.fixture(scope="module")
def sentences():
    return generate_sentiment(160, seed=3)


@pytest.fixture(scope="module")
def tokenizer(sentences):
    return train_wordpiece([t for t, _ in sentences], vocab_size=SMALL["vocab_size"])


def _train_briefly(model, tokenizer, sentences, steps=40):
    """A few Adam steps, so that the logits have margins (the int8 agreement then means something)."""
    batch = tokenizer([t for t, _ in sentences], padding=True, truncation=True, max_length=48, return_tensors="pt")
    labels = torch.tensor([y for _, y in sentences])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        logits = model(batch["input_ids"], attention_mask=batch["attention_mask"])
        logits = logits.logits if hasattr(logits, "logits") else logits
        loss = torch.nn.functional.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory, tokenizer, sentences):
    torch.manual_seed(0)
    model = DistilBertForSequenceClassification(DistilBertConfig(**SMALL), num_labels=2)
    _train_briefly(model, tokenizer, sentences[:120])
    return save_pretrained(model, tmp_path_factory.mktemp("student") / "model", tokenizer)


def test_cli_round_trip_fp32_matches_pytorch_and_int8_agreement_is_reported(student_dir, sentences, tmp_path, capsys):
    from studentbert.cli import main

    texts_file = tmp_path / "texts.txt"
    texts_file.write_text("\n".join(t for t, _ in sentences[120:]))
    out = tmp_path / "onnx"
    assert main(["export", "--model", str(student_dir), "--output-dir", str(out), "--int8",
                 "--texts-file", str(texts_file)]) == 0  # python -m studentbert export ...
    printed = capsys.readouterr().out
    assert "passed" in printed and "agree" in printed
    report = json.loads((out / REPORT_FILE).read_text())
    assert report["kind"] == "classifier" and report["num_texts"] == 40
    assert report["fp32"]["max_abs_diff"] <= 1e-4 and report["fp32"]["passed"]
    assert report["fp32"]["agreement"] == 1.0
    assert 0.0 <= report["int8"]["agreement"] <= 1.0  # reported, not a pass/fail: int8 is expected to differ
    assert report["int8"]["agreement"] >= 0.9, report["int8"]
    assert report["files"][INT8_FILE] < report["files"][FP32_FILE]
    # the folder is self-contained: tokenizer + graph give PyTorch's logits, at batch 1 as at any other size
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(out)
    reference = AutoModelForSequenceClassification.from_pretrained(student_dir).eval()
    session = onnx_session(out / FP32_FILE)
    for texts in (["a single sentence ."], [t for t, _ in sentences[:5]]):
        encoded = tok(texts, padding=True, return_tensors="np")
        with torch.no_grad():
            expected = reference(input_ids=torch.from_numpy(encoded["input_ids"]),
                                 attention_mask=torch.from_numpy(encoded["attention_mask"])).logits.numpy()
        assert abs(onnx_outputs(session, dict(encoded)) - expected).max() <= 1e-4


def test_bert_classifier_with_token_types(tmp_path, tokenizer, sentences):
    torch.manual_seed(1)
    model = BertForSequenceClassification(BertConfig(**SMALL), num_labels=2).eval()
    model_dir = save_pretrained(model, tmp_path / "teacher", tokenizer)
    report = export_onnx(model_dir, tmp_path / "onnx", texts=[t for t, _ in sentences[:16]])
    assert report["fp32"]["passed"] and "int8" not in report
    names = [i.name for i in onnx_session(tmp_path / "onnx" / FP32_FILE).get_inputs()]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]


def test_encoder_directory_exports_hidden_states(tmp_path, tokenizer):
    from studentbert import DistilBertForMaskedLM

    torch.manual_seed(2)
    model_dir = save_pretrained(DistilBertForMaskedLM(DistilBertConfig(**SMALL)).eval(), tmp_path / "mlm", tokenizer)
    report = export_onnx(model_dir, tmp_path / "onnx", int8=True)
    assert report["kind"] == "encoder" and report["fp32"]["passed"]
    assert "agreement" not in report["int8"] and report["int8"]["max_abs_diff"] > 0


def test_bad_inputs_give_one_line_errors(tmp_path, student_dir):
    with pytest.raises(FileNotFoundError, match="has no config.json") as error:
        export_onnx(tmp_path / "nowhere", tmp_path / "out")
    assert "\n" not in str(error.value)
    no_tokenizer = tmp_path / "weights-only"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text((student_dir / "config.json").read_text())
    with pytest.raises(ValueError, match="no tokenizer") as error:
        export_onnx(no_tokenizer, tmp_path / "out")
    assert "\n" not in str(error.value)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (no_tokenizer / name).write_text((student_dir / name).read_text())
    with pytest.raises(FileNotFoundError, match="no weights") as error:
        export_onnx(no_tokenizer, tmp_path / "out")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="non-empty"):
        export_onnx(student_dir, tmp_path / "out", texts=[])
    parser = argparse.ArgumentParser()
    add_export_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["export", "--model", str(student_dir), "--texts-file", str(tmp_path / "missing.txt")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_export(args)
