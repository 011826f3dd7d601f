"""Fine-tuning, task-specific distillation, evaluation, speed, the comparison and the ablation (tiny models)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers
from safetensors.torch import load_file

import studentbert as sb
from studentbert import downstream as ds
from studentbert.data.corpus import generate_sentiment
from studentbert.data.tokenizer import train_wordpiece
from studentbert.training import TrainConfig

MAX_LENGTH = 40
CONFIG = dict(hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64, max_position_embeddings=64)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models on a shared 2-core machine: one thread avoids thread-synchronisation stalls."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
    out["teacher_classifier"] = Path(ds.finetune(out["teacher"], train, test, root / "teacher-ft", config(20),
                                                 MAX_LENGTH)["model_dir"])
    return out


def test_task_datasets_tiny_are_disjoint_and_balanced():
    profile = sb.get_profile("tiny")
    profile = profile.replace(task=dataclasses.replace(profile.task, num_train=300, num_test=200))
    train, test = ds.task_datasets(profile)
    assert (len(train), len(test)) == (300, 200)
    assert set(train.column_names) == set(test.column_names) == {"text", "label"}
    assert not set(train["text"]) & set(test["text"])
    assert sum(train["label"]) == 150 and 0.4 < sum(test["label"]) / 200 < 0.6


def test_finetune_saves_an_ordinary_classifier_and_reports_its_accuracy(dirs, data, tmp_path):
    train, test = data
    results = ds.finetune(dirs["teacher"], train, test, tmp_path, config(20), MAX_LENGTH)
    assert results["completed"] and results["steps"] == 20 and results["model_type"] == "bert"
    assert {"accuracy", "train_seconds", "parameters", "train_loss"} <= set(results)
    assert json.loads((tmp_path / "results.json").read_text())["accuracy"] == results["accuracy"]
    assert not list(tmp_path.glob("checkpoint-*"))  # removed once the run is complete
    model = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "model")
    assert type(model).__name__ == "BertForSequenceClassification" and model.config.num_labels == 2
    assert ds.evaluate_classifier(tmp_path / "model", test, max_length=MAX_LENGTH) == results["accuracy"]
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
    assert ds.finetune(dirs["teacher"], train, test, tmp_path, config(20), MAX_LENGTH) == results
    with pytest.raises(ValueError, match="other settings"):
        ds.finetune(dirs["teacher"], train, test, tmp_path, config(21), MAX_LENGTH)


def test_task_distillation_loss_is_the_two_term_loss(dirs, data, tmp_path):
    train, _ = data
    alpha, temperature = 0.3, 3.0
    tokenizer = transformers.AutoTokenizer.from_pretrained(dirs["student"])
    student = ds._load_classifier(dirs["student"], "student")
    teacher = transformers.AutoModelForSequenceClassification.from_pretrained(dirs["teacher_classifier"])
    args = ds._training_arguments(config(5), tmp_path, evaluate=False)
    trainer = ds.TaskDistillationTrainer(model=student, args=args, teacher=teacher, alpha=alpha,
                                         temperature=temperature)
    collate = transformers.DataCollatorWithPadding(tokenizer)
    batch = collate([{**tokenizer(t, truncation=True, max_length=MAX_LENGTH), "label": y} for t, y in train[:8]])
    batch = {k: v for k, v in batch.items() if k != "token_type_ids"}
    student.eval()
    loss = trainer.compute_loss(student, batch)
    with torch.no_grad():
        z_s = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        z_t = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    hard = F.cross_entropy(z_s, batch["labels"])
    p_t = F.softmax(z_t / temperature, -1)
    kl = (p_t * (p_t.log() - F.log_softmax(z_s / temperature, -1))).sum(-1).mean()
    expected = alpha * hard + (1 - alpha) * temperature**2 * kl
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    loss.backward()
    assert student.classifier.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in trainer.teacher.parameters())


def test_finetune_with_task_distillation(dirs, data, tmp_path):
    train, test = data
    results = ds.finetune(dirs["student"], train, test, tmp_path, config(10), MAX_LENGTH,
                          teacher_dir=dirs["teacher_classifier"])
    assert results["model_type"] == "distilbert" and results["num_layers"] == 2
    assert results["distilled_from"] == str(dirs["teacher_classifier"].resolve())
    assert ds.evaluate_classifier(tmp_path / "model", test, max_length=MAX_LENGTH) == results["accuracy"]
    # the pretraining checkpoint has no trained classification head: refused as a task teacher
    with pytest.raises(ValueError, match="run finetune"):
        ds.finetune(dirs["student"], train, test, tmp_path / "x", config(10), MAX_LENGTH, teacher_dir=dirs["teacher"])


def test_resumed_finetune_equals_uninterrupted(dirs, data, tmp_path):
    train, test = data
    cfg = config(12, save_every=4, log_every=1)
    straight = ds.finetune(dirs["teacher"], train, test, tmp_path / "a", cfg, MAX_LENGTH)
    stopped = ds.finetune(dirs["teacher"], train, test, tmp_path / "b", cfg, MAX_LENGTH, stop_after=6)
    assert stopped == {"completed": False, "step": 6, "output_dir": str(tmp_path / "b")}
    assert [p.name for p in (tmp_path / "b").glob("checkpoint-*")] == ["checkpoint-6"]
    assert not (tmp_path / "b" / "model").exists()
    with pytest.raises(ValueError, match="checkpoint of a fine-tuning run with other settings"):
        ds.finetune(dirs["teacher"], train, test, tmp_path / "b", config(13, save_every=4), MAX_LENGTH)
    resumed = ds.finetune(dirs["teacher"], train, test, tmp_path / "b", cfg, MAX_LENGTH)  # a fresh call resumes
    assert resumed["resumed"] and resumed["steps"] == 12
    a, b = load_file(tmp_path / "a" / "model" / "model.safetensors"), load_file(tmp_path / "b" / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["accuracy"] == straight["accuracy"]
    steps = [json.loads(line)["step"] for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, 13))


def test_inference_speed(dirs):
    speed = ds.inference_speed({"teacher": dirs["teacher_classifier"], "student": dirs["student"]},
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
        ds.finetune(gpt2, train, test, tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="BERT or DistilBERT"):
        ds.finetune(dirs["student"], train, test, tmp_path / "a", config(), MAX_LENGTH, teacher_dir=gpt2)
    with pytest.raises(FileNotFoundError, match="config.json"):
        ds.finetune(tmp_path / "nothing", train, test, tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="empty"):
        ds.finetune(dirs["teacher"], [], test, tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="max_length"):
        ds.finetune(dirs["teacher"], train, test, tmp_path / "a", config(), 1000)
    with pytest.raises(ValueError, match="labels"):
        ds.finetune(dirs["teacher"], train, [("a review", -1)], tmp_path / "a", config(), MAX_LENGTH)
    with pytest.raises(ValueError, match="not a fine-tuned classifier"):
        ds.evaluate_classifier(dirs["teacher"], test, max_length=MAX_LENGTH)
    assert not (tmp_path / "a").exists()


def _small_profile():
    profile = sb.get_profile("tiny")
    return profile.replace(task=dataclasses.replace(profile.task, num_train=128, num_test=64, max_length=MAX_LENGTH),
                           finetune=config(6))


def test_compare_and_ablation_tables(dirs, tmp_path, monkeypatch):
    """The tables' structure and caching; the distillation runs are replaced by the saved student (fast)."""
    calls = []

    def fake_distill(profile, teacher_dir, output_dir, weights, init):
        calls.append((profile.distill.max_steps, weights.alpha_ce, weights.alpha_mlm, weights.alpha_cos, init))
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / ds.RESULTS).write_text(json.dumps({"heldout_student_mlm_accuracy": 0.5 - 0.1 * len(calls)}))
        return dirs["student"]

    monkeypatch.setattr(ds, "_run_distill", fake_distill)
    profile = _small_profile()
    summary = ds.compare(profile, dirs["teacher"], dirs["student"], tmp_path / "compare", speed_repeats=3)
    names = [r["name"] for r in summary["rows"]]
    assert names == ["teacher", "distilled+task-distillation", "distilled", "no-distillation"]
    assert calls == [(profile.distill.max_steps, 0.0, 1.0, 0.0, "random")]
    teacher_row = summary["rows"][0]
    assert teacher_row["accuracy_retained_pct"] == pytest.approx(100.0) and teacher_row["speedup_batch1"] == 1.0
    for row in summary["rows"][1:]:
        assert row["parameters"] < teacher_row["parameters"] and row["num_layers"] == 2
    assert set(summary["baselines"]) == {"majority_class", "bag_of_words"}
    assert json.loads((tmp_path / "compare" / "compare.json").read_text())["rows"] == summary["rows"]
    cached = ds.finetune(dirs["teacher"], *ds.task_datasets(profile), tmp_path / "compare" / "teacher",
                         profile.finetune, MAX_LENGTH)
    assert cached["accuracy"] == teacher_row["accuracy"] and cached["train_seconds"] == teacher_row["train_seconds"]

    calls.clear()
    rows = ds.ablation(profile, dirs["teacher"], tmp_path / "ablation", steps=7, rows=["triple-loss", "no-cos"])
    assert calls == [(7, 5.0, 2.0, 1.0, "teacher"), (7, 5.0, 2.0, 0.0, "teacher")]
    assert [r["name"] for r in rows] == ["triple-loss", "no-cos"] and rows[0]["delta_vs_triple_loss"] == 0.0
    assert json.loads((tmp_path / "ablation" / "ablation.json").read_text()) == rows
    assert [r["mlm_delta_vs_triple_loss"] for r in rows] == [0.0, pytest.approx(-10.0)]
    with pytest.raises(ValueError, match="Unknown ablation rows"):
        ds.ablation(profile, dirs["teacher"], tmp_path / "ablation", rows=["no-such-row"])

    # on_task=False: distillation only, compared by held-out masked-LM accuracy; no fine-tuning run at all
    calls.clear()
    rows = ds.ablation(profile, dirs["teacher"], tmp_path / "ablation-mlm", steps=5,
                       rows=["triple-loss", "no-mlm", "random-init"], on_task=False)
    assert calls == [(5, 5.0, 2.0, 1.0, "teacher"), (5, 5.0, 0.0, 1.0, "teacher"), (5, 5.0, 2.0, 1.0, "random")]
    assert all(r["accuracy"] is None and r["delta_vs_triple_loss"] is None for r in rows)
    assert [r["heldout_mlm_accuracy"] for r in rows] == pytest.approx([0.4, 0.3, 0.2])
    assert [r["mlm_delta_vs_triple_loss"] for r in rows] == pytest.approx([0.0, -10.0, -20.0])
    assert not any((tmp_path / "ablation-mlm" / r["name"] / "finetune").exists() for r in rows)


def test_cli_finetune(dirs, tmp_path, capsys):
    from studentbert.cli import main

    out = tmp_path / "run"
    assert main(["finetune", "--profile", "tiny", "--model", str(dirs["student"]), "--output-dir", str(out),
                 "--teacher", str(dirs["teacher_classifier"]), "--max-steps", "3", "--batch-size", "8"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["steps"] == 3 and results["settings"]["train_config"]["batch_size"] == 8
    assert '"accuracy"' in capsys.readouterr().out
