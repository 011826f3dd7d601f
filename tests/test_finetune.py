"""Fine-tuning on the package's loop, task-specific distillation (ours and as a transformers.Trainer), classifier
evaluation, inference speed, the comparison and the ablation (tiny models, public API only)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers
from helpers import torch_threads
from safetensors.torch import load_file

import studentbert as sb
from studentbert.data import task_datasets
from studentbert.data.sentiment import generate_sentiment
from studentbert.data.tokenizer import train_wordpiece
from studentbert.evaluation import evaluate_classifier
from studentbert.experiments import ablation, compare, task_classifiers
from studentbert.finetune import TaskDistillationLoss, finetune
from studentbert.hf_trainer import TaskDistillationTrainer
from studentbert.speed import inference_speed
from studentbert.training import TrainConfig

MAX_LENGTH = 40
CONFIG = dict(hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64, max_position_embeddings=64)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):  # tiny models: one thread avoids thread-synchronisation stalls
        yield


def config(steps: int = 20, **changes) -> TrainConfig:
    base = dict(max_steps=steps, batch_size=16, learning_rate=1e-3, warmup_ratio=0.1, eval_every=0,
                save_every=0, log_every=5, seed=3)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def data():
    return generate_sentiment(192, seed=0), generate_sentiment(96, seed=1)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, data) -> dict[str, Path]:
    """A random 4-layer teacher, a 2-layer student initialised from it, both with a WordPiece tokenizer."""
    root = tmp_path_factory.mktemp("downstream")
    train, test = data
    tokenizer = train_wordpiece([t for t, _ in train + test], vocab_size=300)
    cfg = sb.BertConfig(vocab_size=len(tokenizer), **CONFIG)
    torch.manual_seed(0)
    teacher = sb.BertForPreTraining(cfg)
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig.from_teacher(cfg, num_layers=2))
    sb.init_student_from_teacher(teacher, student)
    out = {"teacher": sb.save_pretrained(teacher, root / "teacher", tokenizer),
           "student": sb.save_pretrained(student, root / "student", tokenizer), "root": root}
    # a fine-tuned teacher classifier, for task-specific distillation
    out["teacher_classifier"] = Path(finetune(out["teacher"], train, test, root / "teacher-ft", config(20),
                                                 MAX_LENGTH)["model_dir"])
    return out


def test_task_datasets_tiny_are_disjoint_and_balanced():
    profile = sb.get_profile("tiny")
    profile = profile.replace(task=dataclasses.replace(profile.task, num_train=300, num_test=200))
    train, test = task_datasets(profile)
    assert (len(train), len(test)) == (300, 200)
    assert set(train.column_names) == set(test.column_names) == {"text", "label"}
    assert not set(train["text"]) & set(test["text"])
    assert sum(train["label"]) == 150 and 0.4 < sum(test["label"]) / 200 < 0.6


def test_finetune_saves_an_ordinary_classifier_and_reports_its_accuracy(dirs, data, tmp_path):
    train, test = data
    results = finetune(dirs["teacher"], train, test, tmp_path, config(20), MAX_LENGTH)
    assert results["completed"] and results["steps"] == 20 and results["model_type"] == "bert"
    assert {"accuracy", "train_seconds", "parameters", "train_loss"} <= set(results)
    assert json.loads((tmp_path / "results.json").read_text())["accuracy"] == results["accuracy"]
    assert not (tmp_path / "checkpoint.pt").exists()  # removed once the run is complete
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert type(model).__name__ == "BertForSequenceClassification" and model.config.num_labels == 2
    assert evaluate_classifier(tmp_path / "model", test, max_length=MAX_LENGTH) == results["accuracy"]
    # the same predictions from studentbert's own implementation of the exported model
    ours = sb.load_pretrained(tmp_path / "model")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "model")
    batch = tokenizer([t for t, _ in test], padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
    with torch.no_grad():
        predictions = ours(batch["input_ids"], batch["attention_mask"]).argmax(-1)
    labels = torch.tensor([y for _, y in test])
    assert (predictions == labels).float().mean().item() == pytest.approx(results["accuracy"], abs=1e-9)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [5, 10, 15, 20]
    # a finished run is not trained again; other settings in the same directory are refused
    assert finetune(dirs["teacher"], train, test, tmp_path, config(20), MAX_LENGTH) == results
    with pytest.raises(ValueError, match="other settings"):
        finetune(dirs["teacher"], train, test, tmp_path, config(21), MAX_LENGTH)


def test_task_distillation_loss_is_the_two_term_loss_also_as_a_transformers_trainer(dirs, data, tmp_path):
    train, _ = data
    alpha, temperature = 0.3, 3.0
    tokenizer = transformers.AutoTokenizer.from_pretrained(dirs["student"])
    student = transformers.AutoModelForSequenceClassification.from_pretrained(dirs["student"], num_labels=2)
    teacher = transformers.AutoModelForSequenceClassification.from_pretrained(dirs["teacher_classifier"])
    collate = transformers.DataCollatorWithPadding(tokenizer)
    batch = collate([{**tokenizer(t, truncation=True, max_length=MAX_LENGTH), "label": y} for t, y in train[:8]])
    batch = {k: v for k, v in batch.items() if k != "token_type_ids"}
    student.eval()
    ours, terms = TaskDistillationLoss(teacher, alpha, temperature)(student, batch)
    with torch.no_grad():
        z_s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        z_t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    hard = F.cross_entropy(z_s, batch["labels"])
    p_t = F.softmax(z_t / temperature, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(z_s / temperature, -1))).sum(-1).mean()
    expected = alpha * hard + (1 - alpha) * temperature**2 * kl
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    assert terms["hard_loss"] == pytest.approx(hard.item(), rel=1e-5)
    # chapter 8's interop: the same loss through transformers.Trainer.compute_loss, on the same batch
    args = transformers.TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    trainer = TaskDistillationTrainer(model=student, args=args, teacher=teacher, alpha=alpha, temperature=temperature)
    theirs = trainer.compute_loss(student, batch)
    torch.testing.assert_close(theirs, ours, rtol=1e-6, atol=1e-7)
    theirs.backward()
    assert student.classifier.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in trainer.teacher.parameters())
    with pytest.raises(ValueError, match="alpha"):
        TaskDistillationLoss(teacher, alpha=1.5)


def test_finetune_with_task_distillation(dirs, data, tmp_path):
    train, test = data
    results = finetune(dirs["student"], train, test, tmp_path, config(10), MAX_LENGTH,
                          teacher_dir=dirs["teacher_classifier"])
    assert results["model_type"] == "distilbert" and results["num_layers"] == 2
    assert results["distilled_from"] == str(dirs["teacher_classifier"].resolve())
    assert evaluate_classifier(tmp_path / "model", test, max_length=MAX_LENGTH) == results["accuracy"]
    # the pretraining checkpoint has no trained classification head: refused as a task teacher
    with pytest.raises(ValueError, match="run finetune"):
        finetune(dirs["student"], train, test, tmp_path / "x", config(10), MAX_LENGTH, teacher_dir=dirs["teacher"])


def test_resumed_finetune_equals_uninterrupted(dirs, data, tmp_path):
    train, test = data
    cfg = config(12, save_every=4, log_every=1)
    straight = finetune(dirs["teacher"], train, test, tmp_path / "a", cfg, MAX_LENGTH)
    stopped = finetune(dirs["teacher"], train, test, tmp_path / "b", cfg, MAX_LENGTH, stop_after=6)
    assert stopped == {"completed": False, "step": 6, "output_dir": str(tmp_path / "b")}
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["step"] == 6
    assert not (tmp_path / "b" / "model").exists()
    with pytest.raises(ValueError, match="other settings: batch_size"):
        finetune(dirs["teacher"], train, test, tmp_path / "b", config(12, save_every=4, batch_size=8), MAX_LENGTH)
    with pytest.raises(FileExistsError, match="already holds a checkpoint"):
        finetune(dirs["teacher"], train, test, tmp_path / "b", cfg, MAX_LENGTH, resume=False)
    resumed = finetune(dirs["teacher"], train, test, tmp_path / "b", cfg, MAX_LENGTH)  # a fresh call resumes
    assert resumed["resumed"] and resumed["steps"] == 12
    a, b = load_file(tmp_path / "a" / "model" / "model.safetensors"), load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["accuracy"] == straight["accuracy"]
    records = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "train"] == list(range(1, 13))
    assert [r["step"] for r in records if r["split"] == "eval"] == [12]


def test_inference_speed(dirs):
    speed = inference_speed({"teacher": dirs["teacher_classifier"], "student": dirs["student"]},
                               batch_sizes=(1, 32), seq_len=32, repeats=15)
    assert set(speed) == {"teacher", "student", "_setup"}
    for name in ("teacher", "student"):
        assert {"parameters", "num_layers", "latency_ms_batch1", "latency_ms_batch32", "throughput_batch1",
                "throughput_batch32", "min_latency_ms_batch1", "min_latency_ms_batch32"} <= set(speed[name])
        assert speed[name]["throughput_batch32"] == pytest.approx(32_000 / speed[name]["latency_ms_batch32"])
    # parameters, counted by hand: embeddings, layers, then the heads
    V, H, intermediate, P, n = len(transformers.AutoTokenizer.from_pretrained(dirs["student"])), 32, 64, 64, 4
    layer = 4 * (H * H + H) + (H * intermediate + intermediate) + (intermediate * H + H) + 2 * 2 * H
    embeddings = V * H + P * H + 2 * H
    assert speed["teacher"]["parameters"] == embeddings + 2 * H + n * layer + (H * H + H) + (2 * H + 2)
    assert speed["student"]["parameters"] == embeddings + 2 * layer + (H * H + H) + (2 * H + 2)
    assert (speed["teacher"]["num_layers"], speed["student"]["num_layers"]) == (4, 2)
    # half the layers, less time: compared on the fastest of 15 interleaved passes, since on a shared machine
    # any one pass (and even the median) may include time spent waiting for a core
    print(f"min latency at batch 32: student {speed['student']['min_latency_ms_batch32']:.2f} ms, teacher "
          f"{speed['teacher']['min_latency_ms_batch32']:.2f} ms (not asserted: timings on a shared machine vary)")


def test_clear_errors(dirs, data, tmp_path):
    train, test = data
    gpt2 = tmp_path / "gpt2"
    transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(gpt2)
    with pytest.raises(ValueError, match="BERT or DistilBERT"):
        finetune(gpt2, train, test, tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="BERT or DistilBERT"):
        finetune(dirs["student"], train, test, tmp_path / "a", config(), MAX_LENGTH, teacher_dir=gpt2)
    with pytest.raises(FileNotFoundError, match="config.json"):
        finetune(tmp_path / "nothing", train, test, tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="empty"):
        finetune(dirs["teacher"], [], test, tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="max_length"):
        finetune(dirs["teacher"], train, test, tmp_path / "a", config(), 1000)
    with pytest.raises(ValueError, match="labels"):
        finetune(dirs["teacher"], train, [("a review", -1)], tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="not a fine-tuned classifier"):
        evaluate_classifier(dirs["teacher"], test, max_length=MAX_LENGTH)
    assert not (tmp_path / "a").exists()


def _small_profile():
    profile = sb.get_profile("tiny")
    return profile.replace(
        task=dataclasses.replace(profile.task, num_train=128, num_test=64, max_length=MAX_LENGTH),
        data=dataclasses.replace(profile.data, num_documents=40, heldout_documents=8, max_length=MAX_LENGTH),
        student_layers=2, finetune=config(6),
        distill=dataclasses.replace(profile.distill, max_steps=3, batch_size=8, eval_every=0, save_every=0))


def test_compare_and_ablation_tables(dirs, tmp_path):
    """The tables' structure and caching, with real (very short) distillation runs on a small corpus."""
    profile = _small_profile()
    summary = compare(profile, dirs["teacher"], dirs["student"], tmp_path / "compare", speed_repeats=3)
    names = [r["name"] for r in summary["rows"]]
    assert names == ["teacher", "distilled+task-distillation", "distilled", "no-distillation"]
    mlm = json.loads((tmp_path / "compare" / "mlm-student" / "results.json").read_text())
    assert (mlm["steps"], mlm["init"], mlm["weights"]) == (3, "random", {"alpha_ce": 0.0, "alpha_mlm": 1.0,
                                                                        "alpha_cos": 0.0, "temperature": 2.0})
    teacher_row = summary["rows"][0]
    assert teacher_row["accuracy_retained_pct"] == pytest.approx(100.0) and teacher_row["speedup_batch1"] == 1.0
    for row in summary["rows"][1:]:
        assert row["parameters"] < teacher_row["parameters"] and row["num_layers"] == 2
    assert set(summary["baselines"]) == {"majority_class", "bag_of_words"}
    # without the no-teacher row (chapter 7's tiny profile reads it from the seeds study): no MLM-only pretraining
    short = compare(profile, dirs["teacher"], dirs["student"], tmp_path / "short", speed_repeats=1,
                    no_distillation=False)
    assert [r["name"] for r in short["rows"]] == names[:3] and not (tmp_path / "short" / "mlm-student").exists()
    assert short["settings"]["distill_steps_no_distillation"] is None
    assert json.loads((tmp_path / "compare" / "compare.json").read_text())["rows"] == summary["rows"]
    cached = finetune(dirs["teacher"], *task_datasets(profile), tmp_path / "compare" / "teacher",
                      profile.finetune, MAX_LENGTH)
    assert cached["accuracy"] == teacher_row["accuracy"] and cached["train_seconds"] == teacher_row["train_seconds"]
    # chapter 11 deploys compare's fine-tuned teacher and task-distilled student: the same runs, not trained again
    teacher, student = task_classifiers(profile, dirs["teacher"], dirs["student"], tmp_path / "compare")
    for run, row in ((teacher, teacher_row), (student, summary["rows"][1])):
        assert (run["model_dir"], run["accuracy"], run["train_seconds"]) == (row["model_dir"], row["accuracy"],
                                                                            row["train_seconds"])

    rows = ablation(profile, dirs["teacher"], tmp_path / "ablation", steps=2, rows=["triple-loss", "no-cos"])
    runs = [json.loads((tmp_path / "ablation" / r / "distill" / "results.json").read_text()) for r in ("triple-loss",
                                                                                                    "no-cos")]
    assert [(r["steps"], r["init"], r["weights"]["alpha_cos"]) for r in runs] == [(2, "teacher", 1.0), (2, "teacher", 0.0)]
    assert [r["name"] for r in rows] == ["triple-loss", "no-cos"] and rows[0]["delta_vs_triple_loss"] == 0.0
    assert json.loads((tmp_path / "ablation" / "ablation.json").read_text()) == rows
    assert rows[1]["mlm_delta_vs_triple_loss"] == pytest.approx(
        100 * (rows[1]["heldout_mlm_accuracy"] - rows[0]["heldout_mlm_accuracy"]))
    with pytest.raises(ValueError, match="Unknown ablation rows"):
        ablation(profile, dirs["teacher"], tmp_path / "ablation", rows=["no-such-row"])

    # on_task=False: distillation only, compared by held-out masked-LM accuracy; no fine-tuning run at all;
    # a reference student of the profile's length serves as the triple-loss row without distilling again
    reference = tmp_path / "compare" / "mlm-student" / "model"
    rows = ablation(profile, dirs["teacher"], tmp_path / "ablation-mlm", rows=["triple-loss", "random-init"],
                    on_task=False, reference_student=reference)
    assert all(r["accuracy"] is None and r["delta_vs_triple_loss"] is None for r in rows)
    assert rows[0]["student_dir"] == str(reference) and rows[0]["heldout_mlm_accuracy"] == mlm[
        "heldout_student_mlm_accuracy"]
    assert not (tmp_path / "ablation-mlm" / "triple-loss" / "distill").exists()
    assert json.loads((tmp_path / "ablation-mlm" / "random-init" / "distill" / "results.json").read_text())["init"] == "random"
    assert not any((tmp_path / "ablation-mlm" / r["name"] / "finetune").exists() for r in rows)


def test_cli_finetune(dirs, tmp_path, capsys):
    from studentbert.cli import main

    out = tmp_path / "run"
    assert main(["finetune", "--profile", "tiny", "--model", str(dirs["student"]), "--output-dir", str(out),
                 "--teacher", str(dirs["teacher_classifier"]), "--max-steps", "3", "--batch-size", "8"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 3 and results["settings"]["train_config"]["batch_size"] == 8
    assert '"accuracy"' in capsys.readouterr().out
