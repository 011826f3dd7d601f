"""Hugging Face model directories: saving ours, checking and loading any BERT or DistilBERT directory or hub id.

Every model that studentbert writes is an ordinary ``transformers`` directory (``config.json``,
``model.safetensors``, the tokenizer): :func:`save_pretrained` converts ours (:mod:`studentbert.convert`) and
writes it. The loaders read what the hub ships and what the stages write, and refuse anything else with one
clear line: :func:`model_source` (a directory or a hub id), :func:`check_model_dir` (a BERT or DistilBERT
directory), :func:`load_pretrained` (into our classes), :func:`load_teacher` (a BERT teacher for distillation),
:func:`load_classifier` and :func:`load_task_teacher` (``transformers`` sequence classifiers), and
:func:`load_tokenizer`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import torch
import transformers
from torch import nn

from .bert import BertForMaskedLM, BertForPreTraining, BertModel
from .convert import HF_CLASSES, OUR_CLASSES, config_from_hf, from_transformers, to_transformers

Teacher = BertForPreTraining | BertForMaskedLM | BertModel


def save_pretrained(model: nn.Module, directory: str | Path, tokenizer=None, **card) -> Path:
    """Write ``model`` as a Hugging Face directory (``config.json`` + ``model.safetensors``, and the tokenizer).

    ``transformers.AutoModelForPreTraining`` (teacher), ``AutoModelForMaskedLM`` (student) or
    ``AutoModelForSequenceClassification`` load it directly, as does :func:`load_pretrained`.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    to_transformers(model).save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    if card:
        (directory / "studentbert.json").write_text(json.dumps(card, indent=2, default=str))
    return directory


# The files a BERT checkpoint needs: its config, weights (safetensors only: not the TF, Flax, Rust or Core ML
# copies that many hub repositories also hold) and tokenizer.
MODEL_FILES = ["config.json", "model.safetensors", "model.safetensors.index.json", "model-*.safetensors",
               "tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"]


def model_source(name_or_path: str | Path) -> str:
    """A local model directory (checked) or a hub id, as given; a missing local path is an error, not a hub id.

    ``"bert-base-uncased"`` and ``"google/bert_uncased_L-4_H-256_A-4"`` are hub ids. A path that starts with
    ``.``, ``/`` or ``~``, that has more than one ``/``, or whose first part is an existing directory
    (``runs/teacher``) is local, and must exist and hold a ``config.json``.
    """
    text = str(name_or_path)
    path = Path(text).expanduser()
    local = (path.exists() or text.startswith((".", "/", "~")) or text.count("/") > 1
             or (len(path.parts) > 1 and Path(path.parts[0]).is_dir()))
    if not local:
        return text
    if not path.is_dir():
        raise FileNotFoundError(f"No such model directory: {text}. Pass an existing directory or a hub id such "
                                f"as bert-base-uncased.")
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{text} has no config.json: expected a Hugging Face model directory written by save_pretrained "
            f"(ours or transformers').")
    return str(path)


def model_directory(name_or_path: str | Path) -> Path:
    """A local directory for a model: the directory itself, or a download of only :data:`MODEL_FILES` from the hub."""
    source = model_source(name_or_path)
    if Path(source).is_dir():
        return Path(source)
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(source, allow_patterns=MODEL_FILES))


def load_pretrained(directory: str | Path, cls: type | None = None) -> nn.Module:
    """Load a Hugging Face BERT/DistilBERT directory or hub id (ours or the hub's) into a studentbert model.

    ``cls`` picks the model class (e.g. ``BertModel`` for an encoder-only checkpoint); by default it is read
    from the config's ``architectures``: ``BertForPreTraining``, ``BertForMaskedLM`` (``bert-base-uncased``,
    ``run_mlm.py``'s output), ``BertModel``, ``BertForSequenceClassification`` or their DistilBERT counterparts.
    """
    source = model_source(directory)  # a missing local directory is refused here, not sent to the hub
    hf_config = transformers.AutoConfig.from_pretrained(source)
    config_from_hf(hf_config)  # refuses anything that is not a BERT or DistilBERT, with a clear message
    if cls is None:
        arch = (hf_config.architectures or ["BertModel" if hf_config.model_type == "bert" else "DistilBertModel"])[0]
        if arch not in OUR_CLASSES:
            raise ValueError(f"{directory} holds a {arch}; studentbert loads {sorted(OUR_CLASSES)}.")
        cls = OUR_CLASSES[arch]
    hf_cls = HF_CLASSES[cls]
    hf_model = hf_cls.from_pretrained(source)
    return from_transformers(hf_model)


def load_teacher(directory: str | Path, need_mlm_head: bool = True) -> Teacher:
    """Load a BERT teacher from a directory or hub id, as the hub ships it.

    * ``BertForPreTraining`` (``studentbert pretrain``'s output) and ``BertForMaskedLM`` (``bert-base-uncased``,
      ``run_mlm.py``'s output) are loaded with their MLM head; the NSP head, if any, is not needed.
    * A bare ``BertModel`` (an encoder with no MLM head, such as a sentence-embedding model) has no MLM logits,
      so it can only teach through the hidden states: with ``need_mlm_head`` (the soft-target loss ``L_ce`` is
      on) it is refused with a message that says what to pass instead; without, it is returned and the
      distillation runs ``L_mlm + L_cos``.
    """
    model = load_pretrained(directory)
    if isinstance(model, BertForPreTraining | BertForMaskedLM):
        return model
    if isinstance(model, BertModel):
        if need_mlm_head:
            raise ValueError(
                f"{directory} holds a BertModel without an MLM head, so it has no soft targets for L_ce: pass "
                f"--alpha-ce 0 to distil with L_mlm + L_cos only, or a BertForMaskedLM or BertForPreTraining "
                f"checkpoint.")
        return model
    raise ValueError(
        f"{directory} holds a {type(model).__name__}, not a BERT teacher: pass a BertForPreTraining (written by "
        f"`studentbert pretrain`), a BertForMaskedLM such as bert-base-uncased, or a BertModel with --alpha-ce 0.")


# ----------------------------------------------------------------------------------------------------------
# transformers classifiers


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
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


def check_model_dir(directory: str | Path, role: str) -> transformers.PretrainedConfig:
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


def load_classifier(directory: str | Path, role: str, num_labels: int | None = 2,
                    label_names: list[str] | None = None) -> torch.nn.Module:
    """``AutoModelForSequenceClassification`` with ``num_labels`` labels from a BERT/DistilBERT directory.

    ``num_labels`` None keeps the directory's (a fine-tuned classifier); ``label_names`` (one per label) go into
    the config's ``id2label``/``label2id``, which pipelines print. Refuses a load that would re-initialise
    anything but the classification head (a mismatched checkpoint).
    """
    config = check_model_dir(directory, role)
    from transformers import AutoModelForSequenceClassification

    kwargs = {} if num_labels is None else {"num_labels": num_labels}
    if label_names is not None:
        kwargs.update(num_labels=len(label_names), id2label=dict(enumerate(label_names)),
                      label2id={n: i for i, n in enumerate(label_names)})
    with quiet_transformers():
        model, info = AutoModelForSequenceClassification.from_pretrained(
            directory, output_loading_info=True, **kwargs)
    heads = ("classifier.", "pre_classifier.", "bert.pooler.")
    fresh = [k for k in info.get("missing_keys", []) if not k.startswith(heads)]
    if fresh or info.get("mismatched_keys"):
        raise ValueError(
            f"Loading {directory} as a {type(model).__name__} left encoder weights uninitialised "
            f"({(fresh or info['mismatched_keys'])[:4]}): the checkpoint does not match its config.json "
            f"(model_type {config.model_type!r}).")
    return model


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")
"""A directory's tokenizer is one of these (a fast tokenizer's ``tokenizer.json``, or WordPiece's ``vocab.txt``)."""


def load_tokenizer(directory: str | Path, role: str, config: transformers.PretrainedConfig | None = None,
                   tokenizer_dir: str | Path | None = None):
    """The tokenizer of a model directory (or ``tokenizer_dir``), refused unless it fits the model.

    Without its tokenizer files ``AutoTokenizer`` falls back to a 5-token vocabulary that reads every word as
    ``[UNK]``, and training runs on junk: a directory needs ``tokenizer.json`` or ``vocab.txt``. With the
    model's ``config``, the tokenizer must fit it: no more tokens than the model's ``vocab_size`` and not far
    fewer (at most 1% or 128 rows of padding), and ``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]`` within it.
    """
    from transformers import AutoTokenizer

    source = Path(tokenizer_dir if tokenizer_dir is not None else directory)
    where = f"the tokenizer directory {source}" if tokenizer_dir is not None else f"the {role} directory {source}"
    fix = (f"save the tokenizer with the model (tokenizer.save_pretrained('{directory}')), or pass "
           f"--tokenizer DIR (a directory holding the model's tokenizer)")
    if source.is_dir() and not any((source / f).is_file() for f in TOKENIZER_FILES):
        raise ValueError(f"{where[0].upper()}{where[1:]} has no tokenizer files ({' or '.join(TOKENIZER_FILES)}): "
                         f"AutoTokenizer would fall back to a 5-token vocabulary and read every word as [UNK]; "
                         f"{fix}.")
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise ValueError(f"{where[0].upper()}{where[1:]} has no usable tokenizer ({type(error).__name__}: "
                         f"{' '.join(str(error).split())[:200]}); {fix}.") from None
    if config is not None:
        vocab_size, size = config.vocab_size, len(tokenizer)
        if size > vocab_size or vocab_size - size > max(128, vocab_size // 100):
            raise ValueError(f"The tokenizer of {where} has {size} tokens but the {role} in {directory} has "
                             f"{vocab_size} embedding rows: they do not belong together; {fix}.")
        absent = [name for name in ("cls_token", "sep_token", "pad_token", "unk_token")
                  if getattr(tokenizer, f"{name}_id", None) is None or not 0 <= getattr(tokenizer, f"{name}_id")
                  < vocab_size]
        if absent:
            raise ValueError(f"The tokenizer of {where} lacks {', '.join(absent)} (BERT's [CLS], [SEP], [PAD], "
                             f"[UNK]) within the {role}'s {vocab_size} tokens; {fix}.")
    return tokenizer


def load_task_teacher(teacher_dir: str | Path, num_labels: int = 2) -> torch.nn.Module:
    """A fine-tuned teacher classifier, refusing a pretraining checkpoint (its head would be random)."""
    config = check_model_dir(teacher_dir, "teacher")
    architectures = config.architectures or []
    if not any(a.endswith("ForSequenceClassification") for a in architectures):
        raise ValueError(
            f"The teacher directory {teacher_dir} holds a {architectures[0] if architectures else 'model'} "
            f"without a trained classification head. Task-specific distillation needs the teacher fine-tuned on "
            f"the task: run finetune(teacher_dir, ...) first and pass its output_dir / 'model'.")
    if config.num_labels != num_labels:
        raise ValueError(
            f"The teacher in {teacher_dir} has {config.num_labels} labels; the task has {num_labels}: pass a teacher "
            f"fine-tuned on this task (finetune --model TEACHER first), or --num-labels {config.num_labels} if "
            f"the task has that many classes.")
    return load_classifier(teacher_dir, "teacher", num_labels)
