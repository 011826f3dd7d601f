"""Task-agnostic distillation of a pretrained teacher into a DistilBERT student (Sanh et al., 2019).

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
from pathlib import Path

import torch
from torch import nn

from .bert import BertForMaskedLM, BertForPreTraining, BertModel
from .config import DistilBertConfig
from .data import MLMCollator
from .data.segments import build_segment_examples
from .distilbert import DistilBertForMaskedLM
from .hf import load_pretrained, model_source, save_pretrained
from .losses import DistillationLoss, DistillationLossWeights
from .pretrain import evaluate_mlm
from .profiles import Profile
from .student_init import check_compatible, init_student_from_teacher
from .training import Trainer

Teacher = BertForPreTraining | BertForMaskedLM | BertModel


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


def teacher_forward(teacher: Teacher, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    mlm_positions: torch.Tensor | None) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``(MLM logits (M, V) at mlm_positions, or None without an MLM head; last hidden states (B, L, H))``."""
    if isinstance(teacher, BertModel):
        out, _ = teacher(input_ids, attention_mask)
        return None, out.last_hidden_state
    out = teacher(input_ids, attention_mask, mlm_positions=mlm_positions)
    return out.mlm_logits, out.encoder.last_hidden_state


def make_student(teacher: Teacher, num_layers: int, init: str = "teacher",
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


class DistillationStep:
    """The loss function of one distillation step: ``(student, batch) -> (loss, terms)``.

    Keeps the frozen teacher and the :class:`~studentbert.losses.DistillationLoss`. A teacher without an MLM
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
    weights: DistillationLossWeights | None = None,
    init: str = "teacher",
    restrict_ce_to_mask: bool = False,
    resume: bool = True,
    stop_after: int | None = None,
) -> Path:
    """Distil the teacher in ``teacher_dir`` into a student of ``profile.student_layers`` layers.

    Writes ``checkpoint.pt``, ``metrics.jsonl``, ``results.json`` and ``model/`` (a ``DistilBertForMaskedLM``
    directory with the tokenizer, which ``AutoModelForMaskedLM`` loads) into ``output_dir``; returns ``model/``.
    """
    from transformers import AutoTokenizer

    from .pipeline import corpus

    output_dir = Path(output_dir)
    weights = weights or DistillationLossWeights()
    teacher_dir = model_source(teacher_dir)  # a directory or a hub id; a missing directory is refused here
    teacher = load_teacher(teacher_dir, need_mlm_head=weights.alpha_ce > 0)
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    if len(tokenizer) != teacher.config.vocab_size:
        raise ValueError(
            f"The tokenizer in {teacher_dir} has {len(tokenizer)} tokens but the teacher's vocabulary has "
            f"{teacher.config.vocab_size}: the student must share the teacher's tokenizer.")
    student = make_student(teacher, profile.student_layers, init, seed=profile.distill.seed)
    check_compatible(teacher.config, student.config)
    train_docs, heldout_docs = corpus(profile)
    d = profile.data
    train = build_segment_examples(train_docs, tokenizer, max_length=d.max_length)
    heldout = build_segment_examples(heldout_docs, tokenizer, max_length=d.max_length)
    step = DistillationStep(teacher, DistillationLoss.from_weights(weights), restrict_ce_to_mask)
    collate = MLMCollator(tokenizer, seed=profile.distill.seed, return_token_type_ids=False)
    trainer = Trainer(student, step, train, collate, profile.distill, output_dir,
                      evaluate=lambda m: evaluate_mlm(m, heldout, tokenizer),
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
            **({f"heldout_teacher_{k}": v for k, v in evaluate_mlm(teacher, heldout, tokenizer).items()}
               if not isinstance(teacher, BertModel) else {}),  # a bare encoder has no MLM head to evaluate
            "teacher": str(teacher_dir), "teacher_class": type(teacher).__name__,
            "weights": weights.__dict__, "init": init, "restrict_ce_to_mask": restrict_ce_to_mask,
            "student_layers": profile.student_layers, "steps": trainer.step, "history": trainer.history,
            "seconds": time.perf_counter() - t0, "device": str(trainer.accelerator.device),
        }
        save_pretrained(student, output_dir / "model", tokenizer)
        (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    trainer.accelerator.wait_for_everyone()
    return output_dir / "model"
