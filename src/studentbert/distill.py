"""The distillation stage: task-agnostic distillation of a pretrained teacher into a DistilBERT student
(Sanh et al., 2019), on the documents it is given.

One step:

1. the frozen teacher reads the masked batch under ``torch.inference_mode`` and gives its MLM logits
   and last hidden states (no graph, no gradients: the teacher costs one forward pass);
2. the student, initialised from the teacher's layers, reads the same batch;
3. the triple loss ``5·T²·KL(teacher || student) + 2·MLM + 1·cosine`` (T = 2) is back-propagated
   through the student only.

As in the authors' code, the soft-target loss covers every real token (``positions = attention_mask``);
``restrict_ce_to_mask=True`` limits it to the masked tokens (cheaper, not the same objective).
The inputs are single segments: DistilBERT drops next-sentence prediction and token types.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from .bert import BertModel
from .checkpoint import RESULTS
from .data import MLMCollator
from .data.segments import build_segment_examples
from .evaluation import evaluate_mlm, teacher_student_agreement
from .hf import Teacher, load_teacher, load_tokenizer, model_source, save_pretrained
from .profiles import Profile
from .student_init import check_compatible, make_student
from .training import Trainer
from .triple_loss import DistillationLoss, DistillationLossWeights


def teacher_forward(teacher: Teacher, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    mlm_positions: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(MLM logits (M, V) at mlm_positions, or None without an MLM head; last hidden states (B, L, H))``."""
    if isinstance(teacher, BertModel):
        out, _ = teacher(input_ids, attention_mask)
        return None, out.last_hidden_state
    out = teacher(input_ids, attention_mask, mlm_positions=mlm_positions)
    return out.mlm_logits, out.encoder.last_hidden_state


class DistillationStep:
    """The loss function of one distillation step: ``(student, batch) -> (loss, terms)``.

    Keeps the frozen teacher and the :class:`~studentbert.triple_loss.DistillationLoss`. A teacher without an MLM
    head (a bare ``BertModel``) serves only a loss whose soft-target weight ``alpha_ce`` is 0.
    """

    def __init__(self, teacher: Teacher, loss: DistillationLoss, restrict_ce_to_mask: bool = False) -> None:
        if isinstance(teacher, BertModel) and loss.weights.alpha_ce > 0:
            raise ValueError("A teacher without an MLM head (a bare BertModel) has no soft targets: set alpha_ce=0.")
        self.teacher = teacher.eval().requires_grad_(False)
        self.loss = loss
        self.restrict_ce_to_mask = restrict_ce_to_mask

    def __call__(self, student: nn.Module, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        mask = batch["attention_mask"]
        masked = batch["labels"] != -100  # (B, L)
        rows = masked if self.restrict_ce_to_mask else mask.bool()  # positions whose logits are compared
        w = self.loss.weights
        need_logits = w.alpha_ce > 0 or w.alpha_mlm > 0
        t_logits = t_hidden = None
        if w.alpha_ce > 0 or w.alpha_cos > 0:  # an MLM-only run (the no-teacher baseline) skips the teacher
            with torch.inference_mode():
                t_logits, t_hidden = teacher_forward(self.teacher, batch["input_ids"], mask,
                                                     rows if w.alpha_ce > 0 else masked)
                # Inference tensors (no copy needed): the loss only reads them, and what it saves for backward
                # is computed from them outside inference mode.
                t_logits = t_logits if w.alpha_ce > 0 else None  # (M, V)
                t_hidden = t_hidden if w.alpha_cos > 0 else None  # (B, L, H)
        s = student(batch["input_ids"], mask, mlm_positions=rows if need_logits else masked)
        out = self.loss(
            student_logits=s.mlm_logits.float() if need_logits else None,
            teacher_logits=t_logits.float() if t_logits is not None else None,
            labels=batch["labels"][rows] if need_logits else None,
            student_hidden=s.encoder.last_hidden_state.float(),
            teacher_hidden=t_hidden.float() if t_hidden is not None else None,
            attention_mask=mask,
        )
        return out.loss, {k: v for k, v in out.to_dict().items() if k != "loss"}


def distill(
    profile: Profile,
    teacher_dir: str | Path,
    output_dir: str | Path,
    *,
    documents: Sequence[Sequence[str]],
    heldout: Sequence[Sequence[str]],
    weights: DistillationLossWeights | None = None,
    init: str = "teacher",
    restrict_ce_to_mask: bool = False,
    resume: bool | str = True,
    stop_after: int | None = None,
) -> Path:
    """Distil the teacher in ``teacher_dir`` into a student of ``profile.student_layers`` layers, on ``documents``.

    ``documents`` and ``heldout``: lists of documents, each a list of sentences (the profile's corpus,
    :func:`studentbert.data.profile_corpus`), cut into single segments with the teacher's tokenizer. The
    settings are ``profile.distill``, ``profile.student_layers`` and ``profile.data``. ``resume`` and
    ``stop_after`` are those of :meth:`studentbert.training.Trainer.train`.

    Writes ``checkpoint.pt``, ``metrics.jsonl``, ``results.json`` and ``model/`` (a ``DistilBertForMaskedLM``
    directory with the tokenizer, which ``AutoModelForMaskedLM`` loads) into ``output_dir``; returns ``model/``.
    """
    output_dir = Path(output_dir)
    weights = weights or DistillationLossWeights()
    teacher_dir = model_source(teacher_dir)  # a directory or a hub id; a missing directory is refused here
    teacher = load_teacher(teacher_dir, need_mlm_head=weights.alpha_ce > 0)
    tokenizer = load_tokenizer(teacher_dir, "teacher")  # refuses a directory without tokenizer files
    if len(tokenizer) != teacher.config.vocab_size:
        raise ValueError(
            f"The tokenizer in {teacher_dir} has {len(tokenizer)} tokens but the teacher's vocabulary has "
            f"{teacher.config.vocab_size}: the student must share the teacher's tokenizer; save the teacher's "
            f"own tokenizer with it (tokenizer.save_pretrained('{teacher_dir}')).")
    student = make_student(teacher, profile.student_layers, init, seed=profile.distill.seed)
    check_compatible(teacher.config, student.config)
    d = profile.data
    train = build_segment_examples(documents, tokenizer, max_length=d.max_length)
    heldout_examples = build_segment_examples(heldout, tokenizer, max_length=d.max_length)
    step = DistillationStep(teacher, DistillationLoss.from_weights(weights), restrict_ce_to_mask)
    collate = MLMCollator(tokenizer, seed=profile.distill.seed, return_token_type_ids=False)
    trainer = Trainer(student, step, train, collate, profile.distill, output_dir,
                      evaluate=lambda m: {**evaluate_mlm(m, heldout_examples, tokenizer),  # and its agreement
                                          **({} if isinstance(teacher, BertModel) else  # with the teacher
                                             teacher_student_agreement(teacher, m, heldout_examples, tokenizer))},
                      description=f"distillation ({profile.name})",
                      settings={  # everything besides profile.distill that changes the result: a resume compares it
                          "teacher": str(Path(teacher_dir).resolve()) if Path(teacher_dir).is_dir() else str(teacher_dir),
                          "teacher_config": teacher.config.to_dict(), "student_config": student.config.to_dict(),
                          "student_layers": profile.student_layers, "weights": dict(weights.__dict__),
                          "init": init, "restrict_ce_to_mask": restrict_ce_to_mask, "data": dict(vars(d))})
    step.teacher.to(trainer.accelerator.device)
    t0 = time.perf_counter()
    final = trainer.train(resume=resume, stop_after=stop_after)
    if trainer.step < profile.distill.max_steps:
        return output_dir
    if trainer.is_main:
        results = {
            **{f"heldout_student_{k}": v for k, v in final.items()},
            **({f"heldout_teacher_{k}": v for k, v in evaluate_mlm(teacher, heldout_examples, tokenizer).items()}
               if not isinstance(teacher, BertModel) else {}),  # a bare encoder has no MLM head to evaluate
            "teacher": str(teacher_dir), "teacher_class": type(teacher).__name__,
            "weights": weights.__dict__, "init": init, "restrict_ce_to_mask": restrict_ce_to_mask,
            "student_layers": profile.student_layers, "steps": trainer.step, "history": trainer.history,
            "seconds": time.perf_counter() - t0, "device": str(trainer.accelerator.device),
        }
        save_pretrained(student, output_dir / "model", tokenizer)
        (output_dir / RESULTS).write_text(json.dumps(results, indent=2))
    trainer.accelerator.wait_for_everyone()
    return output_dir / "model"
