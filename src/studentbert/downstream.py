"""Downstream: fine-tuning, task-specific distillation, evaluation, speed, the comparison and the ablation.

The models that pretraining and distillation export are ordinary ``transformers`` models, so the downstream
work uses the ordinary ``transformers`` tools: ``AutoModelForSequenceClassification`` puts a fresh
classification head on the encoder (BERT: a linear layer on the pooled ``[CLS]`` vector; DistilBERT, which
has no pooler: ``pre_classifier`` + ReLU + linear on the ``[CLS]`` vector) and ``transformers.Trainer`` fine-tunes it.

Three ways to train a student classifier are compared (:func:`compare`):

* **task-agnostic distillation, then task-specific distillation**: the distilled student is fine-tuned on
  ``alpha * CE(labels) + (1 - alpha) * T² KL(teacher || student)`` (:func:`~studentbert.losses.two_term_loss`),
  where the teacher is the *fine-tuned* teacher classifier (Hinton et al., 2015); Sanh et al. (2019) add
  this second step of distillation on SQuAD ("DistilBERT (D)", their Table 2);
* **task-agnostic distillation, then plain fine-tuning** (the labels only), as DistilBERT on GLUE;
* **no distillation**: the same architecture from a random initialisation, pretrained with masked-LM only
  for the same number of steps, then fine-tuned on the labels.

:func:`ablation` repeats the DistilBERT paper's ablation (Sanh et al., 2019, Table 4) at this book's scale:
remove one term of the triple loss, or the initialisation from the teacher, and measure what it costs on the
downstream task.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import transformers

from .hf import config_from_hf
from .losses import DistillationLossWeights, two_term_loss
from .profiles import Profile
from .training import TrainConfig

NUM_LABELS = 2
RESULTS = "results.json"
METRICS = "metrics.jsonl"
SETTINGS = "settings.json"

__all__ = [
    "ABLATION_ROWS", "TaskDistillationTrainer", "ablation", "compare", "evaluate_classifier", "finetune",
    "inference_speed", "task_datasets",
]


# ----------------------------------------------------------------------------------------------------------
# the task


def task_datasets(profile: Profile):
    """The profile's downstream task as ``(train, test)`` ``datasets.Dataset`` with columns ``text`` and ``label``.

    * ``tiny`` (``profile.task.name == "generated-sentiment"``): the generated reviews of
      :func:`studentbert.data.corpus.generate_sentiment`, ``profile.task.num_train`` training examples (seed
      ``profile.data.seed``) and ``profile.task.num_test`` test examples (seed ``profile.data.seed + 1``). Short
      reviews can come out of both seeds; test sentences that also occur in the training set are dropped
      (and replaced by further generated ones), so that the test set measures generalisation.
    * ``sst2``: GLUE SST-2 (Socher et al., 2013) from the Hugging Face hub, ``train`` and ``validation`` (the
      GLUE test labels are hidden); needs internet access or a cached copy. A local directory in GLUE's
      schema serves the same way. ``num_train``/``num_test`` > 0 keep the first that many examples.
    """
    import datasets

    task = profile.task
    if task.name == "generated-sentiment":
        from .data.corpus import generate_sentiment

        if task.num_train < 1 or task.num_test < 1:
            raise ValueError(
                f"The generated task needs num_train >= 1 and num_test >= 1, got {task.num_train} and "
                f"{task.num_test}: set profile.task.num_train / num_test.")
        train = generate_sentiment(task.num_train, seed=profile.data.seed)
        seen = {text for text, _ in train}
        extra = task.num_test // 5 + 20
        while True:
            candidates = generate_sentiment(task.num_test + extra, seed=profile.data.seed + 1)
            test = [(t, y) for t, y in candidates if t not in seen][: task.num_test]
            if len(test) == task.num_test:
                break
            extra *= 2

        def as_dataset(pairs):
            return datasets.Dataset.from_dict({"text": [t for t, _ in pairs], "label": [y for _, y in pairs]})

        return as_dataset(train), as_dataset(test)
    if task.name == "sst2" or Path(task.name).expanduser().is_dir():
        glue = _load_sst2(task.name)
        train, test = glue["train"], glue["validation"]
        if task.num_train:
            train = train.select(range(min(task.num_train, len(train))))
        if task.num_test:
            test = test.select(range(min(task.num_test, len(test))))
        keep = ["text", "label"]
        train, test = (d.rename_column("sentence", "text") for d in (train, test))
        train, test = (d.remove_columns([c for c in d.column_names if c not in keep]) for d in (train, test))
        return train, test
    raise ValueError(f"Unknown task {task.name!r}: use 'generated-sentiment' (offline) or 'sst2' (GLUE).")


def _load_sst2(source: str):
    """GLUE SST-2 from the hub (``"sst2"``), or a local directory in GLUE's schema (``sentence``, ``label``,
    ``idx``) with ``train`` and ``validation`` files in parquet, CSV or JSON Lines."""
    import datasets

    if source != "sst2":
        directory = Path(source).expanduser()
        files = {split: sorted(p for p in directory.iterdir() if p.stem.startswith(split)
                               and p.suffix in (".parquet", ".csv", ".jsonl", ".json"))
                 for split in ("train", "validation")}
        missing = [split for split, found in files.items() if not found]
        if missing:
            raise FileNotFoundError(f"{directory} has no {' or '.join(missing)} file: a local SST-2 needs "
                                    f"train.parquet and validation.parquet (or .csv / .jsonl) in GLUE's schema.")
        builder = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}[files["train"][0].suffix]
        data = datasets.load_dataset(builder, data_files={k: [str(p) for p in v] for k, v in files.items()})
        for split in ("train", "validation"):
            absent = {"sentence", "label"} - set(data[split].column_names)
            if absent:
                raise ValueError(f"The {split} file of {directory} lacks the column(s) {sorted(absent)}: GLUE's "
                                 f"SST-2 schema is sentence, label, idx.")
        return data
    try:
        return datasets.load_dataset("glue", "sst2")  # fetches the sst2 configuration's files only
    except Exception as error:  # no internet, no cache: say what is needed
        raise RuntimeError(
            f"Could not load GLUE SST-2 ({type(error).__name__}: {error}). The 'full' profile downloads it "
            f"from the Hugging Face hub: run once with internet access (it is cached afterwards), pass a local "
            f"copy (overrides={{'task.name': DIR}}), or use the 'tiny' profile, whose task is generated "
            f"offline.") from error


def _as_dataset(data, what: str):
    """A ``datasets.Dataset`` with ``text`` and ``label`` from a Dataset or a sequence of ``(text, label)``."""
    import datasets

    if isinstance(data, datasets.Dataset):
        missing = {"text", "label"} - set(data.column_names)
        if missing:
            raise ValueError(
                f"The {what} set has columns {data.column_names}; it needs 'text' and 'label' (rename the "
                f"sentence column to 'text', e.g. dataset.rename_column('sentence', 'text')).")
        dataset = data
    elif isinstance(data, Sequence) and not isinstance(data, str):
        pairs = list(data)
        if any(not (isinstance(p, Sequence) and len(p) == 2 and isinstance(p[0], str)) for p in pairs):
            raise TypeError(f"The {what} set must be a datasets.Dataset or a list of (text, label) pairs.")
        dataset = datasets.Dataset.from_dict({"text": [t for t, _ in pairs], "label": [int(y) for _, y in pairs]})
    else:
        raise TypeError(
            f"The {what} set must be a datasets.Dataset with columns 'text' and 'label' or a list of "
            f"(text, label) pairs, got {type(data).__name__}.")
    if len(dataset) == 0:
        raise ValueError(f"The {what} set is empty: there is nothing to {'train on' if what == 'training' else 'evaluate'}.")
    bad = sorted({y for y in dataset["label"] if not 0 <= y < NUM_LABELS})
    if bad:
        raise ValueError(
            f"The {what} set has labels {bad[:5]} outside 0..{NUM_LABELS - 1} (GLUE's hidden test labels are -1: "
            f"evaluate on the validation split).")
    return dataset


# ----------------------------------------------------------------------------------------------------------
# loading


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (a new head is expected, not news)."""
    import datasets
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars, dataset_bars = hf_logging.is_progress_bar_enabled(), datasets.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if dataset_bars:
            datasets.enable_progress_bars()


def _check_model_dir(directory: str | Path, role: str) -> transformers.PretrainedConfig:
    """The config of a BERT or DistilBERT directory; a clear error for anything else."""
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise FileNotFoundError(
            f"The {role} directory {directory} has no config.json: expected a Hugging Face model directory "
            f"(written by studentbert's pretrain, distill or finetune, or by transformers' save_pretrained).")
    config = transformers.AutoConfig.from_pretrained(directory)
    try:
        config_from_hf(config)
    except ValueError as error:
        raise ValueError(f"The {role} directory {directory} cannot be used: {error}") from None
    return config


def _load_classifier(directory: str | Path, role: str) -> torch.nn.Module:
    """``AutoModelForSequenceClassification`` with 2 labels from a BERT/DistilBERT directory.

    Refuses a load that would re-initialise anything but the classification head (a mismatched checkpoint).
    """
    config = _check_model_dir(directory, role)
    from transformers import AutoModelForSequenceClassification

    with _quiet_transformers():
        model, info = AutoModelForSequenceClassification.from_pretrained(
            directory, num_labels=NUM_LABELS, output_loading_info=True)
    heads = ("classifier.", "pre_classifier.", "bert.pooler.")
    fresh = [k for k in info.get("missing_keys", []) if not k.startswith(heads)]
    if fresh or info.get("mismatched_keys"):
        raise ValueError(
            f"Loading {directory} as a {type(model).__name__} left encoder weights uninitialised "
            f"({(fresh or info['mismatched_keys'])[:4]}): the checkpoint does not match its config.json "
            f"(model_type {config.model_type!r}).")
    return model


def _load_tokenizer(directory: str | Path, role: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"The {role} directory {directory} has no usable tokenizer ({type(error).__name__}: {error}); "
            f"save the tokenizer beside the weights (studentbert.save_pretrained(model, dir, tokenizer)).") from None


def _load_task_teacher(teacher_dir: str | Path) -> torch.nn.Module:
    """A fine-tuned teacher classifier, refusing a pretraining checkpoint (its head would be random)."""
    config = _check_model_dir(teacher_dir, "teacher")
    architectures = config.architectures or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ValueError(
            f"The teacher directory {teacher_dir} holds a {architectures[0] if architectures else 'model'} "
            f"without a trained classification head. Task-specific distillation needs the teacher fine-tuned on "
            f"the task: run finetune(teacher_dir, ...) first and pass its output_dir / 'model'.")
    if config.num_labels != NUM_LABELS:
        raise ValueError(f"The teacher in {teacher_dir} has {config.num_labels} labels; the task has {NUM_LABELS}.")
    return _load_classifier(teacher_dir, "teacher")


# ----------------------------------------------------------------------------------------------------------
# fine-tuning


class TaskDistillationTrainer(transformers.Trainer):
    """A ``transformers.Trainer`` whose loss is Hinton's two-term loss against a frozen teacher classifier.

    ``loss = alpha * CE(student logits, labels) + (1 - alpha) * T² KL(p_teacher^T || p_student^T)``
    (:func:`~studentbert.losses.two_term_loss`). The teacher reads the same ``input_ids`` and
    ``attention_mask`` under ``torch.no_grad()``, in eval mode (no dropout): it gives fixed soft targets.

    Args:
        teacher: the fine-tuned teacher classifier (same tokenizer as the student).
        alpha: weight of the hard (label) term in ``[0, 1]``; the soft term gets ``1 - alpha``.
        temperature: ``T > 0`` of the soft term.
        **kwargs: passed to ``transformers.Trainer``.
    """

    def __init__(self, *args, teacher: torch.nn.Module, alpha: float = 0.5, temperature: float = 2.0,
                 **kwargs) -> None:
        _check_alpha_temperature(alpha, temperature)
        super().__init__(*args, **kwargs)
        self.teacher = teacher.eval().requires_grad_(False).to(self.args.device)
        self.alpha, self.temperature = alpha, temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs["labels"]
        outputs = model(**{k: v for k, v in inputs.items() if k != "labels"})
        with torch.no_grad():
            teacher_logits = self.teacher(input_ids=inputs["input_ids"],
                                          attention_mask=inputs["attention_mask"]).logits  # (B, 2)
        loss = two_term_loss(outputs.logits.float(), teacher_logits.float(), labels, self.alpha, self.temperature)
        return (loss, outputs) if return_outputs else loss


def _check_alpha_temperature(alpha: float, temperature: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"alpha must be in [0, 1] (the weight of the hard loss; the soft loss gets 1 - alpha), got {alpha!r}.")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}.")


class _ProgressBar(transformers.TrainerCallback):
    """One tqdm bar with the running loss (transformers' own bar also prints every log record)."""

    def __init__(self, description: str) -> None:
        self.description, self.bar = description, None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, desc=self.description,
                            dynamic_ncols=True)

    def on_step_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k in ("loss", "eval_accuracy")})

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class _StopAfter(transformers.TrainerCallback):
    """Stop (and checkpoint) after ``step`` optimizer steps, as if the run had been interrupted."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_save = True
            control.should_training_stop = True
        return control


def _training_arguments(config: TrainConfig, output_dir: Path, evaluate: bool) -> transformers.TrainingArguments:
    """Our :class:`TrainConfig` as ``transformers.TrainingArguments``."""
    cuda = torch.cuda.is_available()
    world = int(os.environ.get("WORLD_SIZE", "1"))  # set by torchrun / accelerate launch
    if config.batch_size % world:
        raise ValueError(f"batch_size={config.batch_size} (global) must be divisible by the {world} processes.")
    fields = {f.name for f in dataclasses.fields(transformers.TrainingArguments)}
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.batch_size // world,  # TrainConfig.batch_size is global
        "per_device_eval_batch_size": max(64, config.batch_size),
        "learning_rate": config.learning_rate,
        "warmup_steps": int(round(config.warmup_ratio * config.max_steps)),
        "lr_scheduler_type": "linear",
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "adam_epsilon": 1e-6,  # as BERT and studentbert.training
        "seed": config.seed,
        "data_seed": config.seed,
        "bf16": cuda and config.mixed_precision in ("auto", "bf16"),
        "use_cpu": not cuda,
        "torch_compile": config.compile,
        "report_to": "none",
        "logging_strategy": "steps",
        "logging_steps": config.log_every or config.max_steps,
        "save_strategy": "steps" if config.save_every else "no",
        "save_steps": config.save_every or config.max_steps,
        "save_total_limit": 1,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": config.eval_every or None,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }
    if config.group_by_length:
        if "train_sampling_strategy" in fields:  # transformers >= 5
            kwargs["train_sampling_strategy"] = "group_by_length"
        elif "group_by_length" in fields:
            kwargs["group_by_length"] = True
    return transformers.TrainingArguments(**{k: v for k, v in kwargs.items() if k in fields})


def _tokenize(dataset, tokenizer, max_length: int):
    return dataset.map(lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
                       batched=True, remove_columns=["text"])


def _last_checkpoint(output_dir: Path) -> Path | None:
    checkpoints = [p for p in output_dir.glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()]
    return max(checkpoints, key=lambda p: int(p.name.split("-")[-1])) if checkpoints else None


def _settings(model_dir, teacher_dir, config: TrainConfig, max_length, alpha, temperature, train, test) -> dict:
    return {
        "model_dir": str(Path(model_dir).resolve()),
        "teacher_dir": str(Path(teacher_dir).resolve()) if teacher_dir is not None else None,
        "train_config": dataclasses.asdict(config), "max_length": max_length,
        "alpha": alpha if teacher_dir is not None else None,
        "temperature": temperature if teacher_dir is not None else None,
        "num_train": len(train), "num_test": len(test),
    }


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
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Fine-tune the BERT or DistilBERT in ``model_dir`` as a 2-class sentence classifier; return its results.

    ``model_dir`` is a Hugging Face directory with the tokenizer (a teacher from ``pretrain``, a student from
    ``distill``, or any BERT/DistilBERT): ``AutoModelForSequenceClassification`` loads it with a new head, and
    ``transformers.Trainer`` trains it for ``config.max_steps`` steps with AdamW, linear warmup
    (``config.warmup_ratio``) and decay, weight decay, gradient clipping, bf16 autocast on a GPU (fp32 on a CPU),
    all seeded by ``config.seed``.

    With ``teacher_dir`` (a *fine-tuned* teacher classifier, e.g. the ``model/`` folder of an earlier call),
    the loss is task-specific distillation, ``alpha * CE + (1 - alpha) * T² KL`` (:class:`TaskDistillationTrainer`);
    without, the cross-entropy with the labels.

    Writes into ``output_dir``: ``checkpoint-<step>/`` (every ``config.save_every`` steps, the last one kept; a
    rerun resumes from it; removed once the run is complete), ``metrics.jsonl`` (the Trainer's ``log_history``,
    one record a line: ``loss``, ``learning_rate``, ``grad_norm``, ``step``; ``eval_accuracy`` when
    ``config.eval_every`` > 0), ``settings.json``, ``model/`` (the classifier and the tokenizer) and
    ``results.json``. A completed ``output_dir`` is not trained again: its results are returned. Resuming or
    reusing a run made with other settings (model, teacher, data sizes, ``config``...) is an error.

    Args:
        model_dir: the model to fine-tune.
        train, test: ``datasets.Dataset`` with columns ``text`` and ``label`` (0/1), or lists of
            ``(text, label)``; see :func:`task_datasets`.
        output_dir: the run directory.
        config: the optimisation settings (``profile.finetune``).
        max_length: inputs are truncated to this many tokens (``[CLS]`` and ``[SEP]`` included).
        teacher_dir: a fine-tuned teacher classifier for task-specific distillation, or None.
        alpha: weight of the hard loss in task distillation (``1 - alpha`` on the soft loss).
        temperature: the softmax temperature of task distillation.
        stop_after: stop (with a checkpoint) after this many steps, as if interrupted; returns
            ``{"completed": False, "step": ...}`` and writes no model.

    Returns:
        ``accuracy`` (on ``test``, by :func:`evaluate_classifier`), ``train_seconds``, ``steps``,
        ``train_loss``, ``parameters``, ``model_type``, ``num_layers``, ``distilled_from`` (the teacher or None),
        ``model_dir`` (the saved classifier), ``settings`` and ``completed``.
    """
    output_dir = Path(output_dir)
    train = _as_dataset(train, "training")
    test = _as_dataset(test, "test")
    hf_config = _check_model_dir(model_dir, "model")
    settings = _settings(model_dir, teacher_dir, config, max_length, alpha, temperature, train, test)
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
    tokenizer = _load_tokenizer(model_dir, "model")
    if len(tokenizer) > hf_config.vocab_size:
        raise ValueError(
            f"The tokenizer in {model_dir} has {len(tokenizer)} tokens but the model's vocabulary has "
            f"{hf_config.vocab_size}: they do not belong together.")
    teacher = None
    if teacher_dir is not None:
        _check_alpha_temperature(alpha, temperature)
        teacher = _load_task_teacher(teacher_dir)
        teacher_vocab = _load_tokenizer(teacher_dir, "teacher").get_vocab()
        if teacher_vocab != tokenizer.get_vocab():
            raise ValueError(
                f"The teacher ({teacher_dir}) and the student ({model_dir}) use different tokenizers: the teacher "
                f"must read the same token ids as the student. Distil the student from this teacher.")
    if stop_after is not None and not 1 <= stop_after <= config.max_steps:
        raise ValueError(f"stop_after must be in [1, max_steps={config.max_steps}], got {stop_after}.")

    transformers.set_seed(config.seed)  # the new head's initialisation
    model = _load_classifier(model_dir, "model")
    with _quiet_transformers():
        train_tok, test_tok = _tokenize(train, tokenizer, max_length), _tokenize(test, tokenizer, max_length)
    evaluate = bool(config.eval_every)
    args = _training_arguments(config, output_dir, evaluate)
    common = dict(
        model=model, args=args, train_dataset=train_tok, eval_dataset=test_tok if evaluate else None,
        data_collator=transformers.DataCollatorWithPadding(tokenizer), processing_class=tokenizer,
        compute_metrics=_accuracy_metric if evaluate else None,
    )
    if teacher is not None:
        trainer = TaskDistillationTrainer(teacher=teacher, alpha=alpha, temperature=temperature, **common)
    else:
        trainer = transformers.Trainer(**common)
    trainer.remove_callback(transformers.trainer_callback.PrinterCallback)  # the records go to metrics.jsonl
    kind = "task distillation" if teacher is not None else "fine-tuning"
    trainer.add_callback(_ProgressBar(f"{kind} {hf_config.model_type} ({_num_layers(hf_config)} layers)"))
    if stop_after is not None:
        trainer.add_callback(_StopAfter(stop_after))
    resume = _last_checkpoint(output_dir) is not None
    settings_file = output_dir / SETTINGS
    if resume and settings_file.is_file():
        started = json.loads(settings_file.read_text())
        if started != settings:
            raise ValueError(
                f"{output_dir} holds a checkpoint of a fine-tuning run with other settings "
                f"({_settings_diff(started, settings)}): choose another output_dir, or delete it to start afresh.")
    if trainer.is_world_process_zero():
        output_dir.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(settings, indent=2))
    t0 = time.perf_counter()
    with _quiet_transformers():
        output = trainer.train(resume_from_checkpoint=True if resume else None)
    seconds = time.perf_counter() - t0
    _write_metrics(trainer.state.log_history, output_dir / METRICS)
    step = trainer.state.global_step
    if step < config.max_steps:
        return {"completed": False, "step": step, "output_dir": str(output_dir)}
    model = trainer.model
    model.eval()
    accuracy = evaluate_classifier(model, test, tokenizer, max_length)
    results = {
        "accuracy": accuracy,
        "train_seconds": seconds,
        "steps": step,
        "train_loss": output.training_loss,
        "resumed": resume,
        "parameters": sum(p.numel() for p in model.parameters()),
        "model_type": hf_config.model_type,
        "num_layers": _num_layers(hf_config),
        "distilled_from": settings["teacher_dir"],
        "device": str(args.device),
        "model_dir": str(output_dir / "model"),
        "settings": settings,
        "completed": True,
    }
    if trainer.is_world_process_zero():
        with _quiet_transformers():
            trainer.save_model(str(output_dir / "model"))  # model + tokenizer (processing_class)
        (output_dir / RESULTS).write_text(json.dumps(results, indent=2))
        for checkpoint in output_dir.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
    return results


def _accuracy_metric(prediction) -> dict[str, float]:
    logits, labels = prediction.predictions, prediction.label_ids
    logits = logits[0] if isinstance(logits, tuple) else logits
    return {"accuracy": float((logits.argmax(-1) == labels).mean())}


def _write_metrics(log_history: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for record in log_history:
            f.write(json.dumps(record) + "\n")


def _cached_results(output_dir: Path) -> dict | None:
    if (output_dir / "model" / "config.json").is_file() and (output_dir / RESULTS).is_file():
        return json.loads((output_dir / RESULTS).read_text())
    return None


def _settings_diff(old: dict, new: dict) -> str:
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return "; ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in keys[:3]) or "unknown"


def _num_layers(config: transformers.PretrainedConfig) -> int:
    return config.num_hidden_layers  # DistilBERT's config maps it to n_layers


# ----------------------------------------------------------------------------------------------------------
# evaluation and speed


@torch.no_grad()
def evaluate_classifier(
    model_dir_or_model: str | Path | torch.nn.Module,
    test,
    tokenizer=None,
    max_length: int = 128,
    batch_size: int = 64,
) -> float:
    """Accuracy of a sentence classifier on ``test`` (a plain loop: no Trainer, no sampler, no padding tricks).

    Args:
        model_dir_or_model: a ``transformers`` sequence classifier, or a directory that
            ``AutoModelForSequenceClassification`` loads.
        test: ``datasets.Dataset`` with ``text`` and ``label``, or a list of ``(text, label)``.
        tokenizer: the model's tokenizer; may be None when a directory holding one is given.
        max_length: truncation length, as in training.
        batch_size: examples per forward pass.

    Returns:
        The fraction of examples whose arg-max logit is the label.
    """
    test = _as_dataset(test, "test")
    if isinstance(model_dir_or_model, (str, Path)):
        config = _check_model_dir(model_dir_or_model, "model")
        if not any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
            raise ValueError(
                f"{model_dir_or_model} holds a {(config.architectures or ['model'])[0]}, not a fine-tuned "
                f"classifier: its classification head would be random. Fine-tune it first (finetune).")
        model = _load_classifier(model_dir_or_model, "model")
        if tokenizer is None:
            tokenizer = _load_tokenizer(model_dir_or_model, "model")
    else:
        model = model_dir_or_model
    if tokenizer is None:
        raise ValueError("evaluate_classifier needs the tokenizer when it is given a model object.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    texts, labels = test["text"], test["label"]
    correct = 0
    for s in range(0, len(texts), batch_size):
        batch = tokenizer(texts[s:s + batch_size], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        logits = model(input_ids=batch["input_ids"].to(device),
                       attention_mask=batch["attention_mask"].to(device)).logits  # (b, 2)
        target = torch.tensor(labels[s:s + batch_size], device=device)
        correct += (logits.argmax(-1) == target).sum().item()
    model.train(was_training)
    return correct / len(texts)


def _parameter_count(model: torch.nn.Module) -> int:
    from .encoder import count_parameters
    from .hf import from_transformers

    try:
        return count_parameters(from_transformers(model))
    except (TypeError, ValueError):
        return sum(p.numel() for p in model.parameters())


def inference_speed(
    model_dirs: Mapping[str, str | Path],
    batch_sizes: Sequence[int] = (1, 32),
    seq_len: int = 48,
    repeats: int = 20,
    warmup: int = 3,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """CPU inference latency and throughput of several sequence classifiers, measured side by side.

    Every model gets the same inputs: ``batch_size`` sequences of ``seq_len`` random token ids with a full
    attention mask (no padding). After ``warmup`` passes of every model, the ``repeats`` timed passes
    alternate between the models (their order rotating at every repetition), so that a change in the machine's
    load during the run hits every model alike. Forward passes run under ``torch.inference_mode`` in eval mode,
    with the process's current ``torch.get_num_threads()``.

    Args:
        model_dirs: ``{name: directory}``; ``AutoModelForSequenceClassification`` loads each (a pretraining
            checkpoint gets a random head, which costs the same time).
        batch_sizes: the batch sizes to time.
        seq_len: tokens per sequence.
        repeats: timed passes per model and batch size; the median is reported.
        warmup: untimed passes per model and batch size first.
        seed: of the random inputs.

    Returns:
        ``{name: {"parameters", "num_layers", "latency_ms_batch<b>" (median), "throughput_batch<b>"
        (examples/s at the median), "min_latency_ms_batch<b>", ...}}``, plus ``"_setup"``: threads, seq_len,
        repeats. On a machine shared with other jobs the median includes the time the process waited for a core;
        the minimum is the best estimate of the model's own cost.
    """
    if not model_dirs:
        raise ValueError("inference_speed needs at least one model directory.")
    if repeats < 1 or warmup < 0 or seq_len < 1 or not batch_sizes or min(batch_sizes) < 1:
        raise ValueError(
            f"Need repeats >= 1, warmup >= 0, seq_len >= 1 and batch sizes >= 1; got repeats={repeats}, "
            f"warmup={warmup}, seq_len={seq_len}, batch_sizes={tuple(batch_sizes)}.")
    models, results = {}, {}
    for name, directory in model_dirs.items():
        model = _load_classifier(directory, name).to("cpu").eval()
        positions = model.config.max_position_embeddings
        if seq_len > positions:
            raise ValueError(f"seq_len={seq_len} exceeds the {positions} positions of {name} ({directory}).")
        models[name] = model
        results[name] = {"parameters": _parameter_count(model), "num_layers": _num_layers(model.config),
                         "model_dir": str(directory)}
    vocab = min(m.config.vocab_size for m in models.values())
    generator = torch.Generator().manual_seed(seed)
    names = list(models)
    with torch.inference_mode():
        for b in batch_sizes:
            ids = torch.randint(5, max(6, vocab), (b, seq_len), generator=generator)
            mask = torch.ones_like(ids)
            for name in names:
                for _ in range(warmup):
                    models[name](input_ids=ids, attention_mask=mask)
            times: dict[str, list[float]] = {name: [] for name in names}
            for r in range(repeats):
                for name in names[r % len(names):] + names[: r % len(names)]:
                    t0 = time.perf_counter()
                    models[name](input_ids=ids, attention_mask=mask)
                    times[name].append(time.perf_counter() - t0)
            for name in names:
                median = statistics.median(times[name])
                results[name][f"latency_ms_batch{b}"] = 1000 * median
                results[name][f"throughput_batch{b}"] = b / median
                results[name][f"min_latency_ms_batch{b}"] = 1000 * min(times[name])
    results["_setup"] = {"threads": torch.get_num_threads(), "seq_len": seq_len, "repeats": repeats,
                         "warmup": warmup, "batch_sizes": list(batch_sizes), "device": "cpu"}
    return results


# ----------------------------------------------------------------------------------------------------------
# the comparison


def _run_distill(profile: Profile, teacher_dir: Path, output_dir: Path, weights: DistillationLossWeights,
                 init: str) -> Path:
    """``distill`` into ``output_dir`` unless it already finished there (it resumes otherwise)."""
    from .distill import distill

    if (output_dir / "model" / "config.json").is_file() and (output_dir / RESULTS).is_file():
        return output_dir / "model"
    return distill(profile, teacher_dir, output_dir, weights=weights, init=init)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def compare(
    profile: Profile,
    teacher_dir: str | Path,
    student_dir: str | Path,
    output_dir: str | Path,
    alpha: float = 0.5,
    temperature: float = 2.0,
    speed_repeats: int = 20,
) -> dict[str, Any]:
    """Teacher vs distilled student vs the same student trained without distillation, on the profile's task.

    The rows (every run cached in its own folder of ``output_dir``; a rerun skips finished runs and resumes
    interrupted ones):

    * ``teacher``: the pretrained teacher (``teacher_dir``) fine-tuned on the labels (``teacher/``);
    * ``distilled+task-distillation``: the task-agnostic distilled student (``student_dir``) fine-tuned with
      task-specific distillation from the fine-tuned teacher, ``alpha * CE + (1 - alpha) T² KL``
      (``student-task-distilled/``);
    * ``distilled``: the same student fine-tuned on the labels only (``student-finetuned/``);
    * ``no-distillation``: the student architecture from a random initialisation, pretrained with masked-LM
      only (``DistillationLossWeights(alpha_ce=0, alpha_mlm=1, alpha_cos=0)``, ``init="random"``: the teacher
      is loaded but contributes nothing) for ``profile.distill.max_steps`` steps on the same corpus, then
      fine-tuned on the labels (``mlm-student/``, ``student-no-distillation/``).

    Every fine-tuning uses ``profile.finetune`` and ``profile.task.max_length``. Latency is measured on a CPU
    for the teacher and the student architecture (one measurement serves the three student rows: same
    architecture, same cost), side by side (:func:`inference_speed`).

    Returns (and writes to ``output_dir/compare.json``): ``rows`` (``name``, ``description``, ``accuracy``,
    ``accuracy_retained_pct`` (of the teacher's), ``parameters``, ``latency_ms_batch1``, ``latency_ms_batch32``,
    ``speedup_batch1``, ``speedup_batch32``, ``train_seconds``, ``model_dir``), ``baselines``, ``speed`` and
    ``settings``.
    """
    output_dir = Path(output_dir)
    teacher_dir, student_dir = Path(teacher_dir), Path(student_dir)
    teacher_config = _check_model_dir(teacher_dir, "teacher")
    if teacher_config.model_type != "bert":
        raise ValueError(f"The teacher directory {teacher_dir} holds a {teacher_config.model_type}, not a BERT.")
    student_config = _check_model_dir(student_dir, "student")
    if student_config.model_type != "distilbert":
        raise ValueError(f"The student directory {student_dir} holds a {student_config.model_type}, not a DistilBERT.")
    train, test = task_datasets(profile)
    ft, max_length = profile.finetune, profile.task.max_length

    def run(folder: str, model_dir: Path, teacher: Path | None = None) -> dict:
        return finetune(model_dir, train, test, output_dir / folder, ft, max_length, teacher_dir=teacher,
                        alpha=alpha, temperature=temperature)

    teacher = run("teacher", teacher_dir)
    teacher_classifier = Path(teacher["model_dir"])
    task_distilled = run("student-task-distilled", student_dir, teacher_classifier)
    distilled = run("student-finetuned", student_dir)
    mlm_weights = DistillationLossWeights(alpha_ce=0.0, alpha_mlm=1.0, alpha_cos=0.0)
    mlm_student = _run_distill(profile, teacher_dir, output_dir / "mlm-student", mlm_weights, "random")
    undistilled = run("student-no-distillation", mlm_student)

    speed = inference_speed({"teacher": teacher_classifier, "student": Path(task_distilled["model_dir"])},
                            batch_sizes=(1, 32), seq_len=max_length, repeats=speed_repeats)
    student_source = _read_json(student_dir.parent / RESULTS)
    rows_spec = [
        ("teacher", "teacher (BERT), fine-tuned", teacher, "teacher"),
        ("distilled+task-distillation", "distilled student, fine-tuned with task-specific distillation",
         task_distilled, "student"),
        ("distilled", "distilled student, fine-tuned on the labels", distilled, "student"),
        ("no-distillation", "same student, random init + MLM pretraining only, fine-tuned on the labels",
         undistilled, "student"),
    ]
    t_speed = speed["teacher"]
    rows = []
    for name, description, result, arch in rows_spec:
        s = speed[arch]
        rows.append({
            "name": name, "description": description, "accuracy": result["accuracy"],
            "accuracy_retained_pct": 100.0 * result["accuracy"] / teacher["accuracy"] if teacher["accuracy"] else None,
            "parameters": s["parameters"], "num_layers": s["num_layers"],
            "latency_ms_batch1": s["latency_ms_batch1"], "latency_ms_batch32": s["latency_ms_batch32"],
            "speedup_batch1": t_speed["latency_ms_batch1"] / s["latency_ms_batch1"],
            "speedup_batch32": t_speed["latency_ms_batch32"] / s["latency_ms_batch32"],
            "train_seconds": result["train_seconds"], "model_dir": result["model_dir"],
        })
    baselines: dict[str, float] = {"majority_class": max(sum(test["label"]), len(test) - sum(test["label"])) / len(test)}
    if profile.task.name == "generated-sentiment":
        from .data.corpus import bag_of_words_baseline

        pairs = list(zip(train["text"], train["label"], strict=True)), list(zip(test["text"], test["label"], strict=True))
        baselines["bag_of_words"] = bag_of_words_baseline(*pairs)
    summary = {
        "rows": rows,
        "baselines": baselines,
        "speed": speed,
        "mlm_student_pretraining": _read_json(output_dir / "mlm-student" / RESULTS),
        "settings": {
            "profile": profile.name, "task": profile.task.name, "num_train": len(train), "num_test": len(test),
            "teacher_dir": str(teacher_dir), "student_dir": str(student_dir), "alpha": alpha,
            "temperature": temperature, "finetune": dataclasses.asdict(ft),
            "distill_steps_no_distillation": profile.distill.max_steps,
            "distill_steps_student": student_source.get("steps"),
        },
    }
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "compare.json").write_text(json.dumps(summary, indent=2))
    return summary


# ----------------------------------------------------------------------------------------------------------
# the ablation

ABLATION_ROWS: tuple[tuple[str, str, dict[str, float], str], ...] = (
    ("triple-loss", "Triple loss + teacher init (the full recipe)", {}, "teacher"),
    ("no-ce", "triple loss without L_ce", {"alpha_ce": 0.0}, "teacher"),
    ("no-cos", "triple loss without L_cos", {"alpha_cos": 0.0}, "teacher"),
    ("no-mlm", "triple loss without L_mlm", {"alpha_mlm": 0.0}, "teacher"),
    ("random-init", "Triple loss + random weights initialization", {}, "random"),
)
"""``(slug, description, changes to the default DistillationLossWeights, init)`` of each ablation row:
Sanh et al. (2019), Table 4, plus the full recipe as the reference."""


def ablation(
    profile: Profile,
    teacher_dir: str | Path,
    output_dir: str | Path,
    steps: int | None = None,
    rows: Sequence[str] | None = None,
    on_task: bool = True,
    reference_student: str | Path | None = None,
) -> list[dict[str, Any]]:
    """The DistilBERT ablation (Sanh et al., 2019, Table 4) on the profile's task.

    For every row of :data:`ABLATION_ROWS` (or the slugs in ``rows``): task-agnostic distillation of
    ``teacher_dir`` with those loss weights and that initialisation, for ``steps`` steps (default
    ``profile.distill.max_steps``), into ``output_dir/<slug>/distill``; then fine-tuning on the labels only,
    as the paper evaluates on GLUE, into ``output_dir/<slug>/finetune``. Finished runs are reused.
    With ``on_task=False`` the rows stop after distillation: what is compared is then the student's held-out
    masked-LM accuracy, which distillation optimises directly and which no fine-tuning noise blurs.
    ``reference_student``: a student already distilled with the full recipe for ``profile.distill.max_steps``
    steps (chapter 6's): when ``steps`` is that many, it is the ``triple-loss`` row, not distilled again.

    Returns (and writes to ``output_dir/ablation.json``) one dict a row: ``name``, ``description``,
    ``weights``, ``init``, ``steps``, ``accuracy`` (None without ``on_task``), ``delta_vs_triple_loss``
    (task accuracy points relative to the full recipe, when it is among the rows and ``on_task``), the
    student's held-out masked-LM loss and accuracy after distillation and ``mlm_delta_vs_triple_loss`` (its
    change in points), and the run directories.
    """
    output_dir = Path(output_dir)
    teacher_dir = Path(teacher_dir)
    config = _check_model_dir(teacher_dir, "teacher")
    if config.model_type != "bert":
        raise ValueError(f"The teacher directory {teacher_dir} holds a {config.model_type}, not a BERT.")
    steps = profile.distill.max_steps if steps is None else steps
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    known = {slug: (description, changes, init) for slug, description, changes, init in ABLATION_ROWS}
    selected = list(known) if rows is None else list(rows)
    unknown = [r for r in selected if r not in known]
    if unknown:
        raise ValueError(f"Unknown ablation rows {unknown}; choose among {list(known)}.")
    distill_config = dataclasses.replace(
        profile.distill, max_steps=steps,
        eval_every=min(profile.distill.eval_every, steps) if profile.distill.eval_every else 0,
        save_every=min(profile.distill.save_every, steps) if profile.distill.save_every else 0)
    short = profile.replace(distill=distill_config)
    train, test = task_datasets(profile)
    results = []
    for slug in selected:
        description, changes, init = known[slug]
        weights = dataclasses.replace(DistillationLossWeights(), **changes)
        reuse = slug == "triple-loss" and reference_student is not None and steps == profile.distill.max_steps
        if reuse:
            student = Path(reference_student)
            (output_dir / slug).mkdir(parents=True, exist_ok=True)
            shutil.copy(student.parent / RESULTS, output_dir / slug / "distill-results.json")
        else:
            student = _run_distill(short, teacher_dir, output_dir / slug / "distill", weights, init)
        ft = (finetune(student, train, test, output_dir / slug / "finetune", profile.finetune,
                       profile.task.max_length) if on_task else {})
        distilled = _read_json(output_dir / slug / ("distill-results.json" if reuse else f"distill/{RESULTS}"))
        results.append({
            "name": slug, "description": description, "weights": dataclasses.asdict(weights), "init": init,
            "steps": steps, "accuracy": ft.get("accuracy"),
            "heldout_mlm_loss": distilled.get("heldout_student_mlm_loss"),
            "heldout_mlm_accuracy": distilled.get("heldout_student_mlm_accuracy"),
            "distill_seconds": distilled.get("seconds"), "finetune_seconds": ft.get("train_seconds"),
            "student_dir": str(student), "model_dir": ft.get("model_dir"),
        })
    reference = next((r for r in results if r["name"] == "triple-loss"), None)
    for r in results:
        r["delta_vs_triple_loss"] = (100.0 * (r["accuracy"] - reference["accuracy"])
                                     if reference is not None and on_task else None)
        known_mlm = reference is not None and None not in (r["heldout_mlm_accuracy"], reference["heldout_mlm_accuracy"])
        r["mlm_delta_vs_triple_loss"] = (100.0 * (r["heldout_mlm_accuracy"] - reference["heldout_mlm_accuracy"])
                                         if known_mlm else None)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "ablation.json").write_text(json.dumps(results, indent=2))
    return results
