"""Interop with ``transformers.Trainer``: task-specific distillation as a ``Trainer`` subclass (chapter 8).

The package trains with its own loop (:mod:`studentbert.training`; fine-tuning: :mod:`studentbert.finetune`).
Chapter 8 shows how the same objective runs inside the ``transformers`` ecosystem: override
``compute_loss``, and everything else (``TrainingArguments``, callbacks, ``push_to_hub``) is the Trainer's.
``tests/test_finetune.py`` checks that :class:`TaskDistillationTrainer` computes the same loss as
:class:`studentbert.finetune.TaskDistillationLoss` on the same batch.
"""

from __future__ import annotations

import torch
import transformers

from .losses import check_alpha_temperature, two_term_loss


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
        check_alpha_temperature(alpha, temperature)
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
