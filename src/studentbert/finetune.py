"""The fine-tuning stage: a BERT or DistilBERT directory trained as a sentence classifier on labelled examples,
on the labels alone or with task-specific distillation from a fine-tuned teacher.

``AutoModelForSequenceClassification`` puts a fresh classification head on the encoder (BERT: a linear layer on
the pooled ``[CLS]`` vector; DistilBERT, which has no pooler: ``pre_classifier`` + ReLU + linear on the
``[CLS]`` vector), and the package's own loop (:class:`studentbert.training.Trainer`, the loop of pretraining
and distillation) trains it: the same :class:`~studentbert.training.TrainConfig` meaning, mixed precision,
gradient accumulation, DDP, ``checkpoint.pt``, exact resume and ``metrics.jsonl``.

The loss is the cross-entropy with the labels (:func:`classification_loss`), or, with a teacher,
``alpha * CE(labels) + (1 - alpha) * T² KL(teacher || student)`` (:class:`TaskDistillationLoss`,
:func:`~studentbert.losses.two_term_loss`; Hinton et al., 2015), where the teacher is a classifier fine-tuned on
the task. Sanh et al. (2019) add this second step of distillation on SQuAD ("DistilBERT (D)", their Table 2).
With a teacher, unlabelled in-domain text (``unlabeled``) joins the training rows: the teacher's soft targets are
the only loss on those rows (:func:`mixed_distillation_loss`), so the student learns from text no person labelled.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .bert import BertModel
from .checkpoint import CHECKPOINT, METRICS, RESULTS, read_metrics
from .data.labelled import load_labelled, load_unlabeled
from .data.sentiment import as_task_dataset
from .evaluation import evaluate_classifier, model_inputs
from .hf import (
    TOKENIZER_FILES,
    check_model_dir,
    load_classifier,
    load_pretrained,
    load_task_teacher,
    load_tokenizer,
    quiet_transformers,
    save_pretrained,
)
from .losses import check_alpha_temperature, soft_target_loss, two_term_loss
from .optim import TrainConfig
from .student_init import make_student
from .training import Trainer


def classification_loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of a ``transformers`` sequence classifier's logits with ``batch["labels"]``."""
    logits = model(**model_inputs(model, batch)).logits  # (B, C)
    return F.cross_entropy(logits.float(), batch["labels"]), {}


UNLABELED = -100
"""The label of an unlabelled row (``finetune``'s ``unlabeled`` texts): :func:`mixed_distillation_loss` gives it
the soft loss only."""


def mixed_distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                            alpha: float, temperature: float) -> tuple[torch.Tensor, dict[str, float]]:
    r"""Task distillation on a batch of labelled and unlabelled rows (label :data:`UNLABELED`).

    .. math::

        L = \frac{1}{B} \sum_{i=1}^{B} \Big[ m_i \big(\alpha\, \mathrm{CE}_i + (1 - \alpha)\, S_i\big)
            + (1 - m_i)\, S_i \Big],
        \qquad S_i = T^2\, \mathrm{KL}\big(p_{t,i}^{(T)} \,\|\, p_{s,i}^{(T)}\big),

    where :math:`m_i` is 1 on a labelled row and 0 on an unlabelled one and :math:`\mathrm{CE}_i` the row's
    cross-entropy with its label: each labelled row has the book's two-term loss, each unlabelled row the
    teacher's soft loss only, and the batch takes the mean over its rows. A batch of labelled rows only gives
    :func:`~studentbert.losses.two_term_loss` exactly; one of unlabelled rows only the mean of :math:`S_i`
    (the hard term has weight 0 there, not a NaN mean over no rows). Why a mean of per-row losses rather than
    the hard term's mean over the labelled rows of the batch: a row's weight does not then depend on how many
    labelled rows happen to share its batch (or micro-batch), so the training objective is the mean of the
    per-row losses over the data set, whatever the batching.

    Args:
        student_logits, teacher_logits: ``(B, C)``.
        labels: ``(B,)`` class ids, :data:`UNLABELED` on unlabelled rows.
        alpha, temperature: the weight of the hard loss on a labelled row, and ``T``.

    Returns:
        ``(loss, terms)``: the scalar ``L``; ``soft_loss`` (the mean of :math:`S_i`), ``hard_term``
        (:math:`\frac{1}{B}\sum_i m_i \mathrm{CE}_i`, 0 without labelled rows) and ``labelled_rows``, so that
        ``L = alpha * hard_term + mean((1 - alpha m_i) S_i)``. Every batch has all three (the training log
        averages them over steps); the mean cross-entropy of the labelled rows of a logging interval is about
        ``hard_term * B / labelled_rows``.
    """
    labelled = labels != UNLABELED  # (B,)
    m = labelled.to(student_logits.dtype)
    soft = soft_target_loss(student_logits, teacher_logits, temperature, reduction="none")  # (B,)
    hard = F.cross_entropy(student_logits, labels, ignore_index=UNLABELED, reduction="none")  # (B,), 0 unlabelled
    loss = (alpha * m * hard + (1.0 - alpha * m) * soft).mean()
    terms = {"soft_loss": soft.mean().item(), "hard_term": hard.mean().item(), "labelled_rows": float(m.sum())}
    return loss, terms


class TaskDistillationLoss:
    """``(student, batch) -> (loss, terms)``: Hinton's two-term loss against a frozen teacher classifier.

    ``loss = alpha * CE(student logits, labels) + (1 - alpha) * T² KL(p_teacher^T || p_student^T)``. The teacher
    reads the same ``input_ids`` and ``attention_mask`` (and, a BERT, the ``token_type_ids`` of a sentence pair)
    under ``torch.inference_mode``, in eval mode (no dropout): it gives fixed soft targets.

    ``unlabeled=True`` (a run with unlabelled rows, label :data:`UNLABELED`): every batch takes
    :func:`mixed_distillation_loss`, the soft loss only on those rows, so that every step logs the same terms.
    """

    def __init__(self, teacher: nn.Module, alpha: float = 0.5, temperature: float = 2.0,
                 unlabeled: bool = False) -> None:
        check_alpha_temperature(alpha, temperature)
        self.teacher = teacher.eval().requires_grad_(False)
        self.alpha, self.temperature, self.unlabeled = alpha, temperature, unlabeled

    def __call__(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        with torch.inference_mode():
            teacher_logits = self.teacher(**model_inputs(self.teacher, batch)).logits  # (B, C)
        logits = model(**model_inputs(model, batch)).logits
        if self.unlabeled:
            return mixed_distillation_loss(logits.float(), teacher_logits.float(), batch["labels"], self.alpha,
                                           self.temperature)
        hard = F.cross_entropy(logits.float(), batch["labels"])
        loss = two_term_loss(logits.float(), teacher_logits.float(), batch["labels"], self.alpha, self.temperature)
        return loss, {"hard_loss": hard.item()}


class PaddingCollator:
    """Pads ``{"input_ids", "label"}`` examples (and their ``token_type_ids``, if any: sentence pairs) into
    ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``labels`` tensors."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(len(e["input_ids"]) for e in examples)
        ids = torch.full((len(examples), longest), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(examples), longest), dtype=torch.long)
        types = torch.zeros((len(examples), longest), dtype=torch.long)
        for row, e in enumerate(examples):
            ids[row, : len(e["input_ids"])] = torch.tensor(e["input_ids"])
            mask[row, : len(e["input_ids"])] = 1
            if e.get("token_type_ids") is not None:
                types[row, : len(e["token_type_ids"])] = torch.tensor(e["token_type_ids"])
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types,
                "labels": torch.tensor([e["label"] for e in examples])}


def _settings(model_dir, teacher_dir, config: TrainConfig, max_length, alpha, temperature, train, test) -> dict:
    return {
        "model_dir": str(Path(model_dir).resolve()),
        "teacher_dir": str(Path(teacher_dir).resolve()) if teacher_dir is not None else None,
        "train_config": dataclasses.asdict(config), "max_length": max_length,
        "alpha": alpha if teacher_dir is not None else None,
        "temperature": temperature if teacher_dir is not None else None,
        "num_train": len(train), "num_test": len(test),
    }


def _cached_results(output_dir: Path) -> dict | None:
    if (output_dir / "model" / "config.json").is_file() and (output_dir / RESULTS).is_file():
        return json.loads((output_dir / RESULTS).read_text())
    return None


def _settings_diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "; ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:3]) or "unknown"


def _task(train, test, num_labels: int | None, label_names: list[str] | None):
    """The checked :class:`~studentbert.data.labelled.LabelledTask` of ``train`` and ``test``."""
    train, test = as_task_dataset(train, "training", None), as_task_dataset(test, "test", None)
    pair = "text_pair" if "text_pair" in train.column_names else None
    return load_labelled(train, test, text_pair_column=pair, num_labels=num_labels, label_names=label_names)


def _fingerprint(*datasets) -> str:
    """A short hash of the rows (texts and labels), so that a changed data file is not taken for the old one."""
    digest = hashlib.sha256()
    for dataset in datasets:
        for column in sorted(dataset.column_names):
            digest.update(json.dumps([column, list(dataset[column])]).encode())
    return digest.hexdigest()[:16]


def _check_teacher_labels(teacher_dir, teacher_config, label_names: list[str]) -> None:
    """Refuse a teacher whose class names (if it has any besides ``LABEL_i``) are not the task's, in order."""
    names = [teacher_config.id2label[i] for i in range(teacher_config.num_labels)]
    generic = [f"LABEL_{i}" for i in range(len(names))]
    if names != generic and label_names != generic and names != label_names:
        raise ValueError(
            f"The teacher in {teacher_dir} has the classes {names} and the task {label_names}: its soft targets "
            f"would be on other classes. Pass a teacher fine-tuned on this task, or label_names in its order.")


def _student_from(teacher_dir, teacher_config, num_layers: int, directory: Path, tokenizer, seed: int) -> Path:
    """A DistilBERT student of ``num_layers`` initialised from the BERT encoder in ``teacher_dir``, saved."""
    if teacher_config.model_type != "bert":
        raise ValueError(f"--student-layers builds a DistilBERT from a BERT's encoder, and {teacher_dir} holds a "
                         f"{teacher_config.model_type}: pass a BERT (e.g. the fine-tuned teacher classifier).")
    if not isinstance(num_layers, int) or not 1 <= num_layers <= teacher_config.num_hidden_layers:
        raise ValueError(f"--student-layers must be in [1, {teacher_config.num_hidden_layers}] (the teacher's "
                         f"layers), got {num_layers!r}.")
    with quiet_transformers():
        encoder = load_pretrained(teacher_dir, BertModel)
        save_pretrained(make_student(encoder, num_layers, "teacher", seed=seed), directory, tokenizer,
                        initialised_from=str(Path(teacher_dir).resolve()))
    return directory


def finetune(
    model_dir: str | Path,
    train,
    test,
    output_dir: str | Path,
    config: TrainConfig,
    max_length: int,
    teacher_dir: str | Path | None = None,
    alpha: float = 0.5,
    temperature: float = 2.0,
    resume: bool | str = True,
    stop_after: int | None = None,
    allow_changes: Iterable[str] | None = None,
    num_labels: int | None = None,
    label_names: list[str] | None = None,
    tokenizer_dir: str | Path | None = None,
    student_layers: int | None = None,
    unlabeled=None,
    run_config: dict | None = None,
) -> dict[str, Any]:
    """Fine-tune the BERT or DistilBERT in ``model_dir`` as a sentence (or sentence-pair) classifier; return
    its results.

    ``model_dir`` is a Hugging Face directory with the tokenizer (a teacher from ``pretrain``, a student from
    ``distill``, or any BERT/DistilBERT). With ``teacher_dir`` (a *fine-tuned* teacher classifier, e.g. the
    ``model/`` folder of an earlier call) the loss is task-specific distillation (:class:`TaskDistillationLoss`);
    without, the cross-entropy with the labels. The new head is initialised from ``config.seed``.

    Writes into ``output_dir``: ``run_config.json`` (``run_config``, when given), ``checkpoint.pt`` (every
    ``config.save_every`` steps; a rerun resumes from it;
    removed once the run is complete), ``metrics.jsonl`` (``split="train"``: ``loss``, ``lr``, ``grad_norm``...;
    ``split="eval"``: the test ``accuracy`` every ``config.eval_every`` steps and at the end), ``model/`` (the
    classifier and the tokenizer) and ``results.json``. A completed ``output_dir`` is not trained again: its
    results are returned; reusing it with other settings is an error, and so is resuming a checkpoint with
    other settings (model, teacher, data sizes, ``config``...: see :meth:`studentbert.training.Trainer.train`).

    Args:
        model_dir: the model to fine-tune.
        train, test: ``datasets.Dataset`` with columns ``text``, optionally ``text_pair`` (a sentence-pair
            task) and ``label`` (class ids or class names), or lists of ``(text, label)``; see
            :func:`studentbert.data.sentiment.task_datasets` and :func:`studentbert.data.labelled.load_labelled`
            (the label rules: names are mapped to ids in sorted order, and saved as the config's ``id2label``).
        output_dir: the run directory.
        config: the optimisation settings (``profile.finetune``).
        max_length: inputs are truncated to this many tokens (``[CLS]`` and ``[SEP]`` included).
        teacher_dir: a fine-tuned teacher classifier for task-specific distillation, or None.
        alpha: weight of the hard loss in task distillation (``1 - alpha`` on the soft loss).
        temperature: the softmax temperature of task distillation.
        resume, stop_after, allow_changes: those of :meth:`studentbert.training.Trainer.train`; after
            ``stop_after`` steps it returns ``{"completed": False, "step": ...}`` and writes no model.
        num_labels: the number of classes (None: from the labels); a teacher must have as many.
        label_names: the class names in id order (None: the sorted names of string labels, or ``LABEL_i``).
        tokenizer_dir: where the tokenizer is, when ``model_dir`` (or the teacher's) has none.
        student_layers: instead of fine-tuning ``model_dir``, build a DistilBERT student of this many layers
            from its encoder (a BERT, e.g. the teacher classifier: :func:`~studentbert.student_init.make_student`
            copies the embeddings and every other layer), saved in ``output_dir/student-init``, and train it.
        unlabeled: unlabelled in-domain texts (needs ``teacher_dir``): a ``datasets.Dataset`` with ``text``
            (and, a sentence-pair task, ``text_pair``) or a list of texts
            (:func:`~studentbert.data.labelled.load_unlabeled` reads a file). They join the training rows, where the teacher's soft targets are
            their only loss (:func:`mixed_distillation_loss`); the labelled rows keep the ``alpha``/``T`` mix.
        run_config: the settings to record in ``output_dir/run_config.json`` when training starts (the command
            line's), or None.

    Returns:
        ``accuracy`` (on ``test``, by :func:`~studentbert.evaluation.evaluate_classifier`), ``train_seconds``,
        ``steps``, ``train_loss`` (the mean of the logged training losses), ``resumed``, ``parameters``,
        ``model_type``, ``num_layers``, ``distilled_from`` (the teacher or None), ``model_dir`` (the saved
        classifier), ``settings`` and ``completed``.
    """
    output_dir = Path(output_dir)
    hf_config = check_model_dir(model_dir, "model")
    task = _task(train, test, num_labels, label_names)
    train, test, pair = task.train, task.validation, "text_pair" in task.train.column_names
    if unlabeled is not None:
        if teacher_dir is None:
            raise ValueError("Unlabelled text needs a teacher, whose soft targets are the loss on those rows: pass "
                             "teacher_dir (--teacher DIR, a fine-tuned classifier), or leave out unlabeled.")
        import datasets

        if not isinstance(unlabeled, datasets.Dataset):
            unlabeled = datasets.Dataset.from_dict({"text": list(unlabeled)})
        unlabeled = load_unlabeled(unlabeled, "text", "text_pair" if pair else None)
    settings = _settings(model_dir, teacher_dir, config, max_length, alpha, temperature, train, test)
    extra = {"num_labels": task.num_labels, "label_names": task.label_names, "text_pair": pair,
             "tokenizer_dir": str(Path(tokenizer_dir).resolve()) if tokenizer_dir is not None else None,
             "student_layers": student_layers}
    default = {"num_labels": 2, "label_names": ["LABEL_0", "LABEL_1"], "text_pair": False}
    if unlabeled is not None:
        extra["num_unlabeled"] = len(unlabeled)
    settings.update({k: v for k, v in extra.items() if v is not None and default.get(k) != v})
    # the same sizes with other rows are another run
    settings["data"] = _fingerprint(train, test, *([] if unlabeled is None else [unlabeled]))
    cached = _cached_results(output_dir)
    if cached is not None:
        if cached.get("settings") != settings:
            raise ValueError(
                f"{output_dir} already holds a finished fine-tuning run with other settings "
                f"({_settings_diff(cached.get('settings') or {}, settings)}): choose another output_dir, or "
                f"delete it to train again.")
        return cached
    positions = getattr(hf_config, "max_position_embeddings", None)
    if not isinstance(max_length, int) or max_length < 2 or (positions is not None and max_length > positions):
        raise ValueError(
            f"max_length must be an integer in [2, {positions}] (the model has {positions} positions), got "
            f"{max_length!r}.")
    tokenizer = load_tokenizer(model_dir, "model", hf_config, tokenizer_dir)
    loss_fn = classification_loss
    if teacher_dir is not None:
        check_alpha_temperature(alpha, temperature)
        teacher = load_task_teacher(teacher_dir, task.num_labels)
        _check_teacher_labels(teacher_dir, teacher.config, task.label_names)
        own = any((Path(teacher_dir) / f).is_file() for f in TOKENIZER_FILES) or tokenizer_dir is None
        teacher_tokenizer = load_tokenizer(teacher_dir, "teacher", teacher.config, None if own else tokenizer_dir)
        if teacher_tokenizer.get_vocab() != tokenizer.get_vocab():
            raise ValueError(
                f"The teacher ({teacher_dir}) and the student ({model_dir}) use different tokenizers: the teacher "
                f"must read the same token ids as the student. Distil the student from this teacher.")
        loss_fn = TaskDistillationLoss(teacher, alpha, temperature, unlabeled=unlabeled is not None)
    if stop_after is not None and not 1 <= stop_after <= config.max_steps:
        raise ValueError(f"stop_after must be in [1, max_steps={config.max_steps}], got {stop_after}.")
    if student_layers is not None:
        model_dir = _student_from(model_dir, hf_config, student_layers, output_dir / "student-init", tokenizer,
                                  config.seed)
        hf_config = check_model_dir(model_dir, "student")

    torch.manual_seed(config.seed)  # the new head's initialisation
    model = load_classifier(model_dir, "model", label_names=task.label_names)
    examples = []
    for rows, labels in ((train, list(train["label"])),
                         *([] if unlabeled is None else [(unlabeled, [UNLABELED] * len(unlabeled))])):
        second = (list(rows["text_pair"]),) if pair else ()
        encoded = tokenizer(list(rows["text"]), *second, truncation=True, max_length=max_length)
        types = encoded.get("token_type_ids") or [None] * len(rows)
        examples += [{"input_ids": ids, "token_type_ids": tt, "label": y}
                     for ids, tt, y in zip(encoded["input_ids"], types, labels, strict=True)]
    kind = "task distillation" if teacher_dir is not None else "fine-tuning"
    trainer = Trainer(model, loss_fn, examples, PaddingCollator(tokenizer.pad_token_id), config, output_dir,
                      evaluate=lambda m: {"accuracy": evaluate_classifier(m, test, tokenizer, max_length)},
                      description=f"{kind} {hf_config.model_type} ({hf_config.num_hidden_layers} layers)",
                      settings={k: v for k, v in settings.items() if k != "train_config"})
    if isinstance(loss_fn, TaskDistillationLoss):
        loss_fn.teacher.to(trainer.accelerator.device)
    if run_config is not None and trainer.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "run_config.json").write_text(json.dumps(run_config, indent=2, default=str))
    resumed = resume is True and (output_dir / CHECKPOINT).is_file()
    t0 = time.perf_counter()
    with quiet_transformers():
        final = trainer.train(resume=resume, stop_after=stop_after, allow_changes=allow_changes)
    seconds = time.perf_counter() - t0
    if trainer.step < config.max_steps:
        return {"completed": False, "step": trainer.step, "output_dir": str(output_dir)}
    losses = [r["loss"] for r in read_metrics(output_dir / METRICS)["train"]] if trainer.is_main else []
    results = {
        "accuracy": final["accuracy"] if "accuracy" in final else evaluate_classifier(model, test, tokenizer,
                                                                                        max_length),
        "train_seconds": seconds,
        "steps": trainer.step,
        "train_loss": sum(losses) / len(losses) if losses else None,
        "resumed": resumed,
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_type": hf_config.model_type,
        "num_layers": hf_config.num_hidden_layers,
        "num_labels": task.num_labels,
        "label_names": task.label_names,
        "distilled_from": settings["teacher_dir"],
        "device": str(trainer.accelerator.device),
        "model_dir": str(output_dir / "model"),
        "history": trainer.history,
        "settings": settings,
        "completed": True,
    }
    if trainer.is_main:
        with quiet_transformers():
            model.save_pretrained(output_dir / "model")
            tokenizer.save_pretrained(output_dir / "model")
        (output_dir / RESULTS).write_text(json.dumps(results, indent=2))
        (output_dir / CHECKPOINT).unlink(missing_ok=True)  # the run is complete: model/ and results.json serve
    trainer.accelerator.wait_for_everyone()
    return results
