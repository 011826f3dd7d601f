"""Initialise a student from its teacher (Sanh et al., 2019, section 3).

DistilBERT does not start from random weights: it takes the teacher's
embeddings, a subset of its encoder layers and its MLM head. This works because
a student layer has exactly the shape of a teacher layer; only the depth differs.

Which layers? The paper says "taking one layer out of two". The authors'
extraction script (``examples/research_projects/distillation/scripts/extract_distilbert.py``
in ``transformers``) takes teacher layers ``[0, 2, 4, 7, 9, 11]``: evenly spread
over the depth, keeping the first and the last. :func:`default_layer_map`
computes exactly this spread for any depth. :func:`make_student` builds a student of a given depth for a
teacher, initialised this way or at random.
"""

from __future__ import annotations

import torch
from torch import nn

from .bert import BertForMaskedLM, BertForPreTraining, BertModel
from .config import BertConfig, DistilBertConfig
from .distilbert import DistilBertForMaskedLM, DistilBertModel
from .encoder import Encoder


class IncompatibleModelsError(ValueError):
    """A teacher and a student whose shapes or vocabularies do not fit."""


def default_layer_map(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layer indices to copy, evenly spread and keeping the first and last layer.

    ``default_layer_map(12, 6) == [0, 2, 4, 7, 9, 11]``, the choice of the DistilBERT authors' script.
    """
    if not 1 <= student_layers <= teacher_layers:
        raise IncompatibleModelsError(
            f"A student with {student_layers} layers cannot be initialised from a teacher with "
            f"{teacher_layers}: choose between 1 and {teacher_layers} student layers."
        )
    if student_layers == 1:
        return [teacher_layers - 1]
    step = (teacher_layers - 1) / (student_layers - 1)
    return [int(i * step + 0.5) for i in range(student_layers)]


def _encoder(model: nn.Module) -> Encoder:
    if isinstance(model, BertForPreTraining | BertForMaskedLM):
        return model.bert.encoder
    if isinstance(model, DistilBertForMaskedLM):
        return model.distilbert.encoder
    if isinstance(model, BertModel | DistilBertModel):
        return model.encoder
    raise TypeError(f"Expected a studentbert BERT or DistilBERT model, got {type(model).__name__}.")


def check_compatible(teacher: BertConfig, student: DistilBertConfig) -> None:
    """Raise :class:`IncompatibleModelsError` if student layers cannot be copied from the teacher."""
    problems = []
    if teacher.vocab_size != student.vocab_size:
        problems.append(
            f"vocabularies differ (teacher {teacher.vocab_size} tokens, student {student.vocab_size}): the "
            f"student must use the teacher's tokenizer, since distillation compares their distributions "
            f"over the same tokens"
        )
    for name in ("hidden_size", "num_heads", "intermediate_size"):
        t, s = getattr(teacher, name), getattr(student, name)
        if t != s:
            problems.append(
                f"{name} differs (teacher {t}, student {s}): layers can only be copied between models of the "
                f"same width; DistilBERT keeps the teacher's {name} and halves the depth instead"
            )
    if student.max_position_embeddings > teacher.max_position_embeddings:
        problems.append(
            f"the student's position table ({student.max_position_embeddings}) is longer than the teacher's "
            f"({teacher.max_position_embeddings})"
        )
    if problems:
        raise IncompatibleModelsError(
            "Cannot initialise the student from the teacher: " + "; ".join(problems) + ". Build the student "
            "with DistilBertConfig.from_teacher(teacher_config)."
        )


@torch.no_grad()
def init_student_from_teacher(
    teacher: BertForPreTraining | BertForMaskedLM | BertModel,
    student: DistilBertForMaskedLM | DistilBertModel,
    layers: list[int] | None = None,
    fold_token_type: bool = True,
) -> list[int]:
    """Copy the teacher's embeddings, the chosen encoder layers and (if both have one) its MLM head.

    A teacher without an MLM head (a bare ``BertModel``) leaves the student's head as initialised: its decoder
    is tied to the word embeddings, which are copied, and its transform starts random.

    The token-type table is dropped: a student sees no segments. Its word and position tables,
    LayerNorm, and each copied layer are exact copies. With ``fold_token_type`` (our default; the
    authors' script does not do it), the teacher's segment-A vector is added to the student's position
    table, so that a student holding *all* teacher layers reproduces the teacher exactly on
    single-segment inputs. Returns the teacher layer indices used.
    """
    check_compatible(teacher.config, student.config)
    t_enc, s_enc = _encoder(teacher), _encoder(student)
    n_t, n_s = len(t_enc.layers), len(s_enc.layers)
    layers = default_layer_map(n_t, n_s) if layers is None else list(layers)
    if len(layers) != n_s or any(not 0 <= i < n_t for i in layers):
        raise IncompatibleModelsError(
            f"layers={layers} must list {n_s} teacher layer indices in [0, {n_t - 1}], one per student layer."
        )
    s_emb, t_emb = s_enc.embeddings, t_enc.embeddings
    s_emb.word.weight.copy_(t_emb.word.weight)
    s_emb.position.weight.copy_(t_emb.position.weight[: s_emb.position.num_embeddings])
    s_emb.norm.load_state_dict(t_emb.norm.state_dict())
    # BERT adds the segment-A vector to every single-segment input; fold it into the positions so that the
    # student's embeddings of a one-segment input start equal to the teacher's.
    if fold_token_type and t_emb.token_type is not None:
        s_emb.position.weight.add_(t_emb.token_type.weight[0])
    for s_i, t_i in enumerate(layers):
        s_enc.layers[s_i].load_state_dict(t_enc.layers[t_i].state_dict())
    if isinstance(teacher, BertForPreTraining | BertForMaskedLM) and isinstance(student, DistilBertForMaskedLM):
        student.mlm.load_state_dict(teacher.mlm.state_dict())
    return layers


def make_student(teacher: BertForPreTraining | BertForMaskedLM | BertModel, num_layers: int, init: str = "teacher",
                 layers: list[int] | None = None, seed: int = 0) -> DistilBertForMaskedLM:
    """A DistilBERT student of ``num_layers`` with the teacher's width; ``init="teacher"`` copies teacher layers
    (:func:`init_student_from_teacher`), ``init="random"`` keeps BERT's random initialisation."""
    if init not in ("teacher", "random"):
        raise ValueError(f"init must be 'teacher' or 'random', got {init!r}.")
    torch.manual_seed(seed)
    student = DistilBertForMaskedLM(DistilBertConfig.from_teacher(teacher.config, num_layers=num_layers))
    if init == "teacher":
        init_student_from_teacher(teacher, student, layers)
    return student
