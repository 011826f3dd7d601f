"""The report card of a fine-tuning run: figures checked against evaluate_classifier, the models' own counts and
files, and a hand computation of macro-F1 (tiny models, seconds; no time is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import pytest
import torch
import transformers
from helpers import torch_threads

import studentbert as sb
from studentbert.data.tokenizer import train_wordpiece
from studentbert.evaluation import evaluate_classifier
from studentbert.finetune import finetune
from studentbert.hf import load_classifier
from studentbert.report_card import macro_f1, write_report_card
from studentbert.training import TrainConfig

MAX_LENGTH = 24
CONFIG = dict(hidden_size=32, num_layers=4, num_heads=2, intermediate_size=64, max_position_embeddings=64)
NAMES = ["negative", "neutral", "positive"]  # sorted: the ids finetune gives string labels
WORDS = {"negative": ["awful", "terrible", "bad"], "neutral": ["average", "fine", "okay"],
         "positive": ["great", "wonderful", "good"]}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    with torch_threads(1):  # tiny models: one thread avoids thread-synchronisation stalls
        yield


def reviews(n: int, offset: int = 0) -> list[tuple[str, str]]:
    """``(text, class name)`` pairs, the three classes in turn."""
    return [(f"the film number {i} was {WORDS[NAMES[i % 3]][i // 3 % 3]}", NAMES[i % 3])
            for i in range(offset, offset + n)]


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    """A 4-layer BERT teacher classifier fine-tuned on 3 named classes, a 2-layer DistilBERT student
    task-distilled from it (both ``finetune``'s model/ folders), and 2-class classifiers with fresh heads."""
    root = tmp_path_factory.mktemp("report-card")
    train, validation = reviews(48), reviews(21, offset=100)
    tokenizer = train_wordpiece([t for t, _ in train + validation], vocab_size=200)
    cfg = sb.BertConfig(vocab_size=len(tokenizer), **CONFIG)
    torch.manual_seed(0)
    teacher = sb.BertForPreTraining(cfg)
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig.from_teacher(cfg, num_layers=2))
    sb.init_student_from_teacher(teacher, student)
    out = {"teacher_pt": sb.save_pretrained(teacher, root / "teacher-pt", tokenizer),
           "student_pt": sb.save_pretrained(student, root / "student-pt", tokenizer)}
    config = TrainConfig(max_steps=120, batch_size=8, learning_rate=3e-3, warmup_ratio=0.1, eval_every=0,
                         save_every=0, log_every=40, seed=3)
    out["teacher"] = Path(finetune(out["teacher_pt"], train, validation, root / "teacher-ft", config,
                                   MAX_LENGTH)["model_dir"])
    out["student"] = Path(finetune(out["student_pt"], train, validation, root / "student-ft", config, MAX_LENGTH,
                                   teacher_dir=out["teacher"])["model_dir"])
    for name in ("teacher", "student"):  # two classes, fresh heads: enough to read a report
        torch.manual_seed(1)
        model = load_classifier(out[f"{name}_pt"], name, label_names=["no", "yes"])
        model.save_pretrained(root / f"{name}-2")
        tokenizer.save_pretrained(root / f"{name}-2")
        out[f"{name}_2"] = root / f"{name}-2"
    return out


def test_macro_f1_on_known_predictions():
    # class 0: TP 1, FP 1, FN 1 -> 1/2; class 1: TP 2, FP 1, FN 0 -> 4/5; class 2: TP 1, FP 0, FN 1 -> 2/3
    assert macro_f1([0, 1, 1, 1, 2, 0], [0, 0, 1, 1, 2, 2]) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert macro_f1([2, 0, 1], [2, 0, 1]) == 1.0
    # a class predicted but never true counts, with F1 0: class 0 -> 2/3, class 1 -> 0
    assert macro_f1([0, 1], [0, 0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="as many"):
        macro_f1([0, 1], [0])


def test_macro_f1_agrees_with_scikit_learn_when_installed():
    metrics = pytest.importorskip("sklearn.metrics")
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        labels, predictions = torch.randint(0, 4, (2, 50), generator=generator).tolist()
        assert macro_f1(predictions, labels) == pytest.approx(metrics.f1_score(labels, predictions,
                                                                                average="macro"))


def hand_macro_f1(predictions: torch.Tensor, labels: torch.Tensor, num_labels: int) -> float:
    """From the confusion matrix: F1 = 2 TP / (row sum + column sum), over classes seen in either."""
    confusion = torch.zeros(num_labels, num_labels)
    confusion.index_put_((labels, predictions), torch.ones(len(labels)), accumulate=True)
    seen = (confusion.sum(0) + confusion.sum(1)) > 0
    f1 = 2 * confusion.diag() / (confusion.sum(0) + confusion.sum(1)).clamp(min=1)
    return f1[seen].mean().item()


def test_report_card_of_a_student_beside_its_teacher(dirs, tmp_path):
    validation = reviews(21, offset=100)  # class names, as the user's files hold them
    as_ids = [(t, NAMES.index(y)) for t, y in validation]
    report = write_report_card(tmp_path, dirs["student"], validation, teacher_dir=dirs["teacher"],
                               max_length=MAX_LENGTH, repeats=3, warmup=1, goals={"accuracy_retained": 0.0})
    assert json.loads((tmp_path / "report.json").read_text()) == report
    tokenizer = transformers.AutoTokenizer.from_pretrained(dirs["student"])
    batch = tokenizer([t for t, _ in validation], padding=True, truncation=True, max_length=MAX_LENGTH,
                      return_tensors="pt")
    labels = torch.tensor([y for _, y in as_ids])
    for name in ("teacher", "student"):
        figures = report["models"][name]
        assert figures["accuracy"] == evaluate_classifier(dirs[name], as_ids, max_length=MAX_LENGTH)
        model = transformers.AutoModelForSequenceClassification.from_pretrained(dirs[name]).eval()
        with torch.no_grad():
            inputs = {k: v for k, v in batch.items() if k != "token_type_ids" or name == "teacher"}
            predictions = model(**inputs).logits.argmax(-1)
        assert figures["macro_f1"] == pytest.approx(hand_macro_f1(predictions, labels, 3), abs=1e-6)
        assert figures["parameters"] == sum(p.numel() for p in model.parameters())
        body = model.base_model
        layers = body.encoder if name == "teacher" else body.transformer
        assert figures["encoder_parameters"] == sum(p.numel() for m in (body.embeddings, layers)
                                                    for p in m.parameters())
        assert figures["weights_bytes"] == (dirs[name] / "model.safetensors").stat().st_size
        for b in (1, 32):
            speed = figures["speed"][f"batch_{b}"]
            assert speed["median_ms"] > 0 and speed["min_ms"] > 0 and speed["examples_per_s"] > 0
            assert len(speed["all_ms"]) == 3 and speed["min_ms"] <= speed["median_ms"]
    teacher, student, ratios = report["models"]["teacher"], report["models"]["student"], report["ratios"]
    assert student["num_layers"] == 2 and teacher["num_layers"] == 4
    assert ratios["accuracy_retained"] == pytest.approx(student["accuracy"] / teacher["accuracy"])
    assert ratios["weights_bytes"] == pytest.approx(student["weights_bytes"] / teacher["weights_bytes"])
    assert ratios["parameters"] < 1
    assert ratios["speedup_batch_32"] == pytest.approx(
        teacher["speed"]["batch_32"]["median_ms"] / student["speed"]["batch_32"]["median_ms"])
    assert report["settings"]["num_validation"] == 21 and report["settings"]["label_names"] == NAMES
    assert report["environment"]["device"] in ("cpu", "cuda")
    assert report["environment"]["torch"] == torch.__version__

    card = (tmp_path / "report.md").read_text()
    assert "|  | teacher | student | student / teacher |" in card
    for row in ("| accuracy |", "| macro-F1 |", "| parameters |", "| encoder parameters |",
                "| weights on disk (MB) |", "| latency, batch 1: median / min (ms) |",
                "| throughput, batch 32 (examples/s) |"):
        assert row in card
    assert f"{ratios['accuracy_retained']:.1%}" in card and report["verdict"] in card
    assert "of the teacher's accuracy" in report["verdict"] and "accuracy_retained" in report["verdict"]
    assert ": met" in report["verdict"]

    png = tmp_path / "report.png"
    assert png.read_bytes()[:8] == PNG
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert (image[0, 0, :3] == 1).all() and (image.shape[2] == 3 or image[0, 0, 3] == 1)  # opaque white


def test_two_classes_give_no_macro_f1_and_no_teacher_gives_no_ratios(dirs, tmp_path):
    validation = [(t, i % 2) for i, (t, _) in enumerate(reviews(10))]
    report = write_report_card(tmp_path / "pair", dirs["student_2"], validation, teacher_dir=dirs["teacher_2"],
                               max_length=MAX_LENGTH, batch_sizes=(1, 4), repeats=2, warmup=0)
    assert all("macro_f1" not in m for m in report["models"].values())
    assert "macro_f1_retained" not in report["ratios"]
    assert "| macro-F1 |" not in (tmp_path / "pair" / "report.md").read_text()

    alone = write_report_card(tmp_path / "alone", dirs["student_2"], validation, max_length=MAX_LENGTH,
                              batch_sizes=(1, 4), repeats=2, warmup=0)
    assert list(alone["models"]) == ["student"] and "ratios" not in alone
    assert alone["models"]["student"]["accuracy"] == evaluate_classifier(dirs["student_2"], validation,
                                                                         max_length=MAX_LENGTH)
    card = (tmp_path / "alone" / "report.md").read_text()
    assert "|  | model |" in card and "teacher |" not in card and "student / teacher" not in card
    assert "The model (no teacher given): accuracy" in alone["verdict"] and "Goals" not in alone["verdict"]
    assert (tmp_path / "alone" / "report.png").read_bytes()[:8] == PNG


def test_what_cannot_be_compared_is_refused(dirs, tmp_path):
    validation = reviews(6)
    with pytest.raises(ValueError, match="not a fine-tuned classifier"):
        write_report_card(tmp_path, dirs["student_pt"], validation, max_length=MAX_LENGTH)
    with pytest.raises(ValueError, match="not be on the same task"):
        write_report_card(tmp_path, dirs["student"], validation, teacher_dir=dirs["teacher_2"],
                          max_length=MAX_LENGTH)
    with pytest.raises(ValueError, match="not classes of the model"):
        write_report_card(tmp_path, dirs["student"], [("a film", "great")], max_length=MAX_LENGTH)
    assert not (tmp_path / "report.json").exists()
