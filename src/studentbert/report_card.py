"""A report card for a fine-tuned classifier: the student beside its teacher on accuracy, size and speed.

:func:`write_report_card` measures one student classifier (and, when given, the teacher it was distilled
from) on the validation set and on the device of the run, and writes three files into a directory:

* ``report.json``: per model the accuracy (and the macro-F1 when there are more than two classes), the
  parameters (total, and the encoder's: embeddings and Transformer layers, without the classification head),
  the bytes of ``model.safetensors``, and the latency (median and minimum, ms) and throughput (examples/s) at
  each batch size; with a teacher, the ratios student/teacher; the device, torch version and hardware; the
  settings.
* ``report.md``: the same figures as a table (teacher | student | ratio) and one line of verdict facts.
* ``report.png``: accuracy against the latency at the largest batch size, one labelled point per model.

The models are timed side by side, alternately, by :func:`studentbert.speed.interleaved` (the package's one
timing helper), on validation sentences, so that a change in the machine's load hits both alike. Nothing here
judges a time against a goal unless the caller passes the goal (``goals``).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .data.sentiment import as_task_dataset
from .evaluation import model_inputs
from .hardware import cpu_name, describe
from .hf import TOKENIZER_FILES, check_model_dir, load_classifier, load_tokenizer
from .speed import interleaved, summary

REPORT_FILES = ("report.json", "report.md", "report.png")


def macro_f1(predictions: Sequence[int], labels: Sequence[int]) -> float:
    """The unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN).

    The classes are those that occur in ``labels`` or ``predictions`` (as scikit-learn's ``f1_score(...,
    average="macro")`` counts them); a class that is predicted but never true, or true but never predicted,
    has F1 = 0.
    """
    if len(predictions) != len(labels) or not labels:
        raise ValueError(f"macro_f1 needs as many predictions as labels (at least one); got {len(predictions)} "
                         f"and {len(labels)}.")
    scores = []
    for c in sorted(set(labels) | set(predictions)):
        tp = sum(p == c and y == c for p, y in zip(predictions, labels, strict=True))
        fp = sum(p == c and y != c for p, y in zip(predictions, labels, strict=True))
        fn = sum(p != c and y == c for p, y in zip(predictions, labels, strict=True))
        scores.append(2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


@torch.inference_mode()
def predict(model: torch.nn.Module, validation, tokenizer, max_length: int, batch_size: int = 64) -> list[int]:
    """The arg-max class of every example of ``validation`` (the batches, padding and truncation of
    :func:`~studentbert.evaluation.evaluate_classifier`, so the accuracy is the one it computes)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    texts = validation["text"]
    pairs = validation["text_pair"] if "text_pair" in validation.column_names else None
    out: list[int] = []
    for s in range(0, len(texts), batch_size):
        second = (pairs[s:s + batch_size],) if pairs is not None else ()
        batch = tokenizer(texts[s:s + batch_size], *second, padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        logits = model(**model_inputs(model, batch.to(device))).logits  # (b, num_labels)
        out.extend(logits.argmax(-1).tolist())
    model.train(was_training)
    return out


def weights_bytes(model_dir: str | Path) -> int | None:
    """Bytes of the weights on disk: ``model.safetensors``, or the sum of its shards; None without either."""
    model_dir = Path(model_dir)
    files = [model_dir / "model.safetensors"] if (model_dir / "model.safetensors").is_file() else sorted(
        model_dir.glob("model-*.safetensors"))
    return sum(f.stat().st_size for f in files) if files else None


def encoder_parameters(model: torch.nn.Module) -> int:
    """Parameters of the encoder of a ``transformers`` classifier: its base model (embeddings and layers)
    without BERT's pooler, which, like DistilBERT's ``pre_classifier``, belongs to the classification head."""
    return sum(p.numel() for n, p in model.base_model.named_parameters() if not n.startswith("pooler."))


def _load(model_dir: str | Path, role: str, tokenizer_dir, device: torch.device):
    config = check_model_dir(model_dir, role)
    if not any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
        raise ValueError(f"The {role} directory {model_dir} holds a {(config.architectures or ['model'])[0]}, not "
                         f"a fine-tuned classifier: its head would be random. Pass the model/ folder of finetune.")
    model = load_classifier(model_dir, role, num_labels=None).to(device).eval()
    own = any((Path(model_dir) / f).is_file() for f in TOKENIZER_FILES)
    return model, load_tokenizer(model_dir, role, config, None if own or tokenizer_dir is None else tokenizer_dir)


def _names(config) -> list[str]:
    return [config.id2label[i] for i in range(config.num_labels)]


def _validation(validation, config):
    """``validation`` as a Dataset with class ids; class names are mapped through the model's ``label2id``."""
    dataset = as_task_dataset(validation, "validation", num_labels=None)
    labels = list(dataset["label"])
    if any(isinstance(y, str) for y in labels):
        unknown = sorted({str(y) for y in labels if y not in config.label2id})
        if unknown:
            raise ValueError(f"The validation labels {unknown[:5]} are not classes of the model "
                             f"({_names(config)}): pass class ids or the names the model was fine-tuned with.")
        dataset = dataset.remove_columns("label").add_column("label", [config.label2id[y] for y in labels])
    return as_task_dataset(dataset, "validation", num_labels=config.num_labels)


def _speed(models: Mapping[str, tuple], validation, max_length: int, batch_sizes: Sequence[int], device,
           repeats: int, warmup: int) -> dict[str, dict[str, Any]]:
    """Latency and throughput of every model at every batch size, interleaved; the inputs are the first
    validation examples (cycled to fill a batch), each model's own tokenizer, padded to the batch's longest."""
    texts = validation["text"]
    pairs = validation["text_pair"] if "text_pair" in validation.column_names else None
    out: dict[str, dict[str, Any]] = {name: {} for name in models}
    for b in batch_sizes:
        rows = [i % len(texts) for i in range(b)]
        second = ([pairs[i] for i in rows],) if pairs is not None else ()
        runs = {}
        for name, (model, tokenizer) in models.items():
            batch = tokenizer([texts[i] for i in rows], *second, padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt").to(device)
            runs[name] = functools.partial(model, **model_inputs(model, batch))
        with torch.inference_mode():
            times = interleaved(runs, repeats, warmup, device)
        for name in models:
            stats = summary(times[name])
            out[name][f"batch_{b}"] = {**stats, "examples_per_s": 1e3 * b / stats["median_ms"]}
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def _ratios(teacher: dict, student: dict, batch_sizes: Sequence[int]) -> dict[str, float | None]:
    ratios = {"accuracy_retained": _ratio(student["accuracy"], teacher["accuracy"])}
    if "macro_f1" in student:
        ratios["macro_f1_retained"] = _ratio(student["macro_f1"], teacher["macro_f1"])
    ratios["parameters"] = _ratio(student["parameters"], teacher["parameters"])
    ratios["encoder_parameters"] = _ratio(student["encoder_parameters"], teacher["encoder_parameters"])
    ratios["weights_bytes"] = _ratio(student["weights_bytes"], teacher["weights_bytes"])
    for b in batch_sizes:
        t, s = teacher["speed"][f"batch_{b}"], student["speed"][f"batch_{b}"]
        ratios[f"speedup_batch_{b}"] = _ratio(t["median_ms"], s["median_ms"])  # = the throughput ratio
        ratios[f"speedup_batch_{b}_min"] = _ratio(t["min_ms"], s["min_ms"])
    return ratios


def _verdict(report: dict, goals: Mapping[str, float] | None) -> str:
    """One line of facts computed from the figures (and, only when passed, each goal met or not)."""
    student, ratios, device = report["models"]["student"], report.get("ratios"), report["environment"]["device"]
    sizes = report["settings"]["batch_sizes"]
    if ratios is None:
        f1 = f" (macro-F1 {student['macro_f1']:.3f})" if "macro_f1" in student else ""
        speeds = " and ".join(f"{student['speed'][f'batch_{b}']['median_ms']:.3g} ms at batch {b}" for b in sizes)
        line = (f"The model (no teacher given): accuracy {student['accuracy']:.3f}{f1}, {student['parameters']:,} parameters, "
                f"median latency {speeds} on {device}.")
    else:
        def pct(x):
            return "n/a" if x is None else f"{100 * x:.1f}%"

        f1 = f" ({pct(ratios['macro_f1_retained'])} of its macro-F1)" if "macro_f1_retained" in ratios else ""
        speeds = " and ".join(f"{ratios[f'speedup_batch_{b}']:.2f}x" + (" the teacher's speed" if i == 0 else "")
                              + f" at batch {b}" for i, b in enumerate(sizes))
        line = (f"The student keeps {pct(ratios['accuracy_retained'])} of the teacher's accuracy{f1} with "
                f"{pct(ratios['parameters'])} of its parameters, and runs at {speeds} (median latencies on "
                f"{device}).")
    if goals:
        checks = []
        for key, goal in goals.items():
            value = (ratios or {}).get(key, student.get(key))
            if not isinstance(value, int | float):
                raise ValueError(f"The goal {key!r} names no figure of the report; with a teacher the ratios are "
                                 f"{sorted(ratios or {})}, without one the student's figures (e.g. 'accuracy').")
            checks.append(f"{key} {value:.3g} {'>=' if value >= goal else '<'} goal {goal:g}: "
                          f"{'met' if value >= goal else 'not met'}")
        line += " Goals: " + "; ".join(checks) + "."
    return line


def _count(x: float) -> str:
    """A rate for a table: whole numbers with thousands separators from 100 up, 3 significant digits below."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def _markdown(report: dict) -> str:
    models, ratios, settings, env = report["models"], report.get("ratios"), report["settings"], report["environment"]
    names = list(models) if ratios is not None else ["model"]  # alone, a fine-tuned model need not be a student

    def row(label: str, cells: list[str], ratio: str | None = None) -> str:
        return "| " + " | ".join([label, *cells, *([] if ratios is None else [ratio or ""])]) + " |"

    def fmt(x, spec: str) -> str:
        return "n/a" if x is None else format(x, spec)

    lines = ["# Report card", "",
             f"Validation: {settings['num_validation']} examples, {settings['num_labels']} classes "
             f"({', '.join(settings['label_names'])}); max_length {settings['max_length']}.  ",
             f"Device: {env['device']} ({env['hardware']}; CPU: {env['cpu']}); torch {env['torch']}.", "",
             row("", names, "student / teacher"), "|---" * (len(names) + 1 + (ratios is not None)) + "|"]
    r = ratios or {}
    lines.append(row("accuracy", [f"{m['accuracy']:.4f}" for m in models.values()],
                     f"{fmt(r.get('accuracy_retained'), '.1%')} retained"))
    if "macro_f1" in models["student"]:
        lines.append(row("macro-F1", [f"{m['macro_f1']:.4f}" for m in models.values()],
                         f"{fmt(r.get('macro_f1_retained'), '.1%')} retained"))
    lines.append(row("parameters", [f"{m['parameters']:,}" for m in models.values()],
                     f"{fmt(r.get('parameters'), '.3f')}x"))
    lines.append(row("encoder parameters", [f"{m['encoder_parameters']:,}" for m in models.values()],
                     f"{fmt(r.get('encoder_parameters'), '.3f')}x"))
    lines.append(row("weights on disk (MB)", [fmt(m["weights_bytes"] and m["weights_bytes"] / 1e6, ".2f")
                                              for m in models.values()], f"{fmt(r.get('weights_bytes'), '.3f')}x"))
    for b in settings["batch_sizes"]:
        key = f"batch_{b}"
        lines.append(row(f"latency, batch {b}: median / min (ms)",
                         [f"{m['speed'][key]['median_ms']:.3g} / {m['speed'][key]['min_ms']:.3g}"
                          for m in models.values()],
                         f"{fmt(r.get(f'speedup_{key}'), '.2f')}x / {fmt(r.get(f'speedup_{key}_min'), '.2f')}x "
                         f"speed-up"))
        lines.append(row(f"throughput, batch {b} (examples/s)",
                         [_count(m['speed'][key]['examples_per_s']) for m in models.values()],
                         f"{fmt(r.get(f'speedup_{key}'), '.2f')}x"))
    lines += ["", f"**Verdict.** {report['verdict']}", "",
              f"Timed {'side by side, interleaved, ' if len(models) > 1 else ''}on the first validation examples (repetitions per batch size: "
              f"{settings['repeats']}, after warm-up passes: {settings['warmup']}; torch threads: "
              f"{env['threads']}). A median on a shared machine includes waits for a core; the minimum is the "
              f"model's own cost.", ""]
    return "\n".join(lines)


def _plot(report: dict, path: Path) -> None:
    """Accuracy against the median latency at the largest batch size, one labelled point per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    b = max(report["settings"]["batch_sizes"])
    fig = Figure(figsize=(5.5, 3.8), facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(facecolor="white")
    slowest = max(m["speed"][f"batch_{b}"]["median_ms"] for m in report["models"].values())
    for i, ((name, m), colour) in enumerate(zip(report["models"].items(), ("#1f4e8c", "#c0392b"), strict=False)):
        x, y = m["speed"][f"batch_{b}"]["median_ms"], m["accuracy"]
        ax.scatter([x], [y], s=60, color=colour, zorder=3)
        below = i == 1  # the teacher's label above its point, the student's below: close points stay legible
        ax.annotate(f"{name}\n{m['parameters']:,} parameters", (x, y), textcoords="offset points",
                    xytext=(8, -8 if below else 8), va="top" if below else "bottom", fontsize=9, color="#222222")
    ax.set_xlabel(f"median latency at batch {b} (ms, {report['environment']['device']})")
    ax.set_ylabel("validation accuracy")
    ax.set_xlim(0, 1.6 * slowest)
    ax.set_ylim(0, 1.15)
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.grid(True, color="#dddddd")
    ax.set_title("Report card: accuracy and latency", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120, facecolor="white", transparent=False)


def write_report_card(
    output_dir: str | Path,
    student_dir: str | Path,
    validation,
    teacher_dir: str | Path | None = None,
    tokenizer_dir: str | Path | None = None,
    max_length: int = 128,
    batch_sizes: Sequence[int] = (1, 32),
    device: str | torch.device | None = None,
    repeats: int = 20,
    warmup: int = 3,
    goals: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Measure a student classifier (and its teacher) and write ``report.json``, ``report.md`` and ``report.png``.

    Args:
        output_dir: where the three files go (created if needed).
        student_dir: the student classifier (a ``model/`` folder written by ``finetune``).
        validation: a ``datasets.Dataset`` with ``text`` [``text_pair``] and ``label`` (class ids, or the class
            names of the models' ``id2label``), or a list of ``(text, label)``.
        teacher_dir: the teacher classifier, or None: the student's figures only (its column is headed
            "model": a plain fine-tuning run need not make a student), no ratios.
        tokenizer_dir: the tokenizer, for a model directory without one.
        max_length: inputs are truncated to this many tokens, as in training.
        batch_sizes: the batch sizes timed.
        device: where the models run and are timed (None: CUDA if available, else the CPU).
        repeats, warmup: timed and untimed passes per model and batch size.
        goals: optional minimums for the figures of the verdict, e.g. ``{"accuracy_retained": 0.97}``; each is
            reported met or not met. None: the verdict states the figures only.

    Returns:
        The content of ``report.json``: ``models`` (``{"teacher"?, "student"}``, each with ``accuracy``,
        ``macro_f1`` (more than two classes), ``parameters``, ``encoder_parameters``, ``weights_bytes``,
        ``speed`` (``batch_<b>``: ``median_ms``, ``min_ms``, ``all_ms``, ``examples_per_s``)), ``ratios``
        (student/teacher; only with a teacher; ``speedup_batch_<b>`` is teacher/student latency),
        ``verdict``, ``environment`` and ``settings``.
    """
    if repeats < 1 or warmup < 0 or not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(f"Need repeats >= 1, warmup >= 0 and batch sizes >= 1; got repeats={repeats}, "
                         f"warmup={warmup}, batch_sizes={tuple(batch_sizes)}.")
    device = torch.device(device if device is not None else "cuda" if torch.cuda.is_available() else "cpu")
    dirs = {"teacher": teacher_dir} if teacher_dir is not None else {}
    dirs["student"] = student_dir
    loaded = {name: _load(d, name, tokenizer_dir, device) for name, d in dirs.items()}
    student_config = loaded["student"][0].config
    if "teacher" in loaded:
        t_names, s_names = _names(loaded["teacher"][0].config), _names(student_config)
        generic = [f"LABEL_{i}" for i in range(len(s_names))]
        if len(t_names) != len(s_names) or (t_names != s_names and generic not in (t_names, s_names)):
            raise ValueError(f"The teacher ({teacher_dir}) has the classes {t_names} and the student "
                             f"({student_dir}) {s_names}: their accuracies would not be on the same task.")
    validation = _validation(validation, student_config)
    labels = list(validation["label"])
    models: dict[str, dict[str, Any]] = {}
    for name, (model, tokenizer) in loaded.items():
        predictions = predict(model, validation, tokenizer, max_length)
        models[name] = {"model_dir": str(Path(dirs[name]).resolve()), "model_type": model.config.model_type,
                        "num_layers": model.config.num_hidden_layers,
                        "accuracy": sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)}
        if student_config.num_labels > 2:
            models[name]["macro_f1"] = macro_f1(predictions, labels)
        models[name].update(parameters=sum(p.numel() for p in model.parameters()),
                            encoder_parameters=encoder_parameters(model), weights_bytes=weights_bytes(dirs[name]))
    speed = _speed(loaded, validation, max_length, batch_sizes, device, repeats, warmup)
    for name in models:
        models[name]["speed"] = speed[name]
    report: dict[str, Any] = {"models": models}
    if "teacher" in models:
        report["ratios"] = _ratios(models["teacher"], models["student"], batch_sizes)
    report["environment"] = {"device": str(device), "torch": torch.__version__, "hardware": describe(),
                             "cpu": cpu_name(), "threads": torch.get_num_threads()}
    report["settings"] = {"max_length": max_length, "batch_sizes": list(batch_sizes),
                          "num_validation": len(labels), "num_labels": student_config.num_labels,
                          "label_names": _names(student_config), "repeats": repeats, "warmup": warmup,
                          "goals": dict(goals) if goals else None}
    report["verdict"] = _verdict(report, goals)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "report.json").write_text(json.dumps(report, indent=2))
    (output_dir / "report.md").write_text(_markdown(report))
    _plot(report, output_dir / "report.png")
    return report
