"""DistilBERT's triple loss: ``L = alpha_ce L_ce + alpha_mlm L_mlm + alpha_cos L_cos`` (Sanh et al., 2019).

Its weights and temperature (:class:`DistillationLossWeights`, defaults 5, 2, 1 and T = 2), what one
evaluation returns (:class:`DistillationLossOutput`: the total and each term), and the module that combines
the three terms of :mod:`studentbert.losses` (:class:`DistillationLoss`). Shapes as in :mod:`studentbert.losses`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .losses import (
    _check_logit_pair,
    _check_temperature,
    _select_rows,
    cosine_loss,
    hard_loss,
    soft_target_loss,
)


@dataclass
class DistillationLossWeights:
    """The weights of DistilBERT's triple loss, and its temperature (defaults: Sanh et al., 2019).

    Attributes:
        alpha_ce: weight of the soft-target loss (``T² · KL``); 5 in DistilBERT.
        alpha_mlm: weight of the hard loss (masked-LM cross-entropy, or task labels); 2 in DistilBERT.
        alpha_cos: weight of the cosine loss on the last hidden states; 1 in DistilBERT.
        temperature: ``T`` of the soft-target loss; 2 in DistilBERT.
    """

    alpha_ce: float = 5.0
    alpha_mlm: float = 2.0
    alpha_cos: float = 1.0
    temperature: float = 2.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first problem found, and its fix."""
        for name in ("alpha_ce", "alpha_mlm", "alpha_cos"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
                    or math.isinf(value):
                raise ValueError(
                    f"{name} must be a finite number >= 0, got {value!r}: a negative weight would make the "
                    f"student move *away* from that target. Use 0 to switch the term off."
                )
        if self.alpha_ce + self.alpha_mlm + self.alpha_cos == 0:
            raise ValueError(
                "loss weights sum to zero: nothing would be learned; set at least one of alpha_ce, "
                "alpha_mlm, alpha_cos > 0."
            )
        _check_temperature(self.temperature)


@dataclass
class DistillationLossOutput:
    """What :class:`DistillationLoss` returns.

    Attributes:
        loss: the weighted total, a scalar to call ``backward()`` on.
        soft: the un-weighted soft-target loss ``T² · KL``, or None when ``alpha_ce == 0``.
        hard: the un-weighted hard (true-label) loss, or None when ``alpha_mlm == 0``.
        cosine: the un-weighted cosine loss, or None when ``alpha_cos == 0``.
    """

    loss: torch.Tensor
    soft: torch.Tensor | None = None
    hard: torch.Tensor | None = None
    cosine: torch.Tensor | None = None

    def to_dict(self) -> dict[str, float]:
        """Python floats for logging: ``loss`` and each computed term (``loss_soft``, ``loss_hard``, ``loss_cos``)."""
        out = {"loss": self.loss.item()}
        for key, value in (("loss_soft", self.soft), ("loss_hard", self.hard), ("loss_cos", self.cosine)):
            if value is not None:
                out[key] = value.item()
        return out


class DistillationLoss(nn.Module):
    r"""DistilBERT's triple loss, :math:`L = \alpha_{ce} L_{soft} + \alpha_{mlm} L_{hard} + \alpha_{cos} L_{cos}`.

    * :math:`L_{soft}` = :func:`soft_target_loss` (``T² · KL``, mean over the selected rows);
    * :math:`L_{hard}` = :func:`hard_loss` (cross-entropy with the labels; for MLM only the masked
      positions carry a label, the others are ``-100``);
    * :math:`L_{cos}` = :func:`cosine_loss` on the last hidden states, over the real tokens.

    A term whose weight is 0 is not computed, and its inputs may be None.

    **Which positions the soft loss uses.** ``positions`` (``(B, L)`` booleans) selects the rows of
    ``(B, L, V)`` logits; without it every row of the logits counts (pass already-selected ``(M, V)``
    logits, or ``(N, C)`` classification logits). In the authors' code (``distiller.py`` in the
    Hugging Face ``transformers`` research projects) the soft loss covers every real token,
    ``positions = attention_mask``, unless ``--restrict_ce_to_mask`` is set, which is
    ``positions = labels != -100`` (the masked tokens only). Nothing is chosen for you: a ``(B, L, V)``
    batch with padding and no ``positions`` would include the padding rows.

    Args:
        alpha_ce, alpha_mlm, alpha_cos, temperature: see :class:`DistillationLossWeights`.
    """

    def __init__(
        self, alpha_ce: float = 5.0, alpha_mlm: float = 2.0, alpha_cos: float = 1.0, temperature: float = 2.0
    ) -> None:
        super().__init__()
        self.weights = DistillationLossWeights(alpha_ce, alpha_mlm, alpha_cos, temperature)

    @classmethod
    def from_weights(cls, weights: DistillationLossWeights) -> DistillationLoss:
        return cls(weights.alpha_ce, weights.alpha_mlm, weights.alpha_cos, weights.temperature)

    def extra_repr(self) -> str:
        w = self.weights
        return f"alpha_ce={w.alpha_ce}, alpha_mlm={w.alpha_mlm}, alpha_cos={w.alpha_cos}, temperature={w.temperature}"

    def forward(
        self,
        student_logits: torch.Tensor | None = None,
        teacher_logits: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        student_hidden: torch.Tensor | None = None,
        teacher_hidden: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
    ) -> DistillationLossOutput:
        """Compute the weighted total and its terms.

        Args:
            student_logits: ``(B, L, V)`` or ``(N, V)``; needed when ``alpha_ce > 0`` or ``alpha_mlm > 0``.
            teacher_logits: same shape; needed when ``alpha_ce > 0``.
            labels: ``student_logits.shape[:-1]``, ``-100`` where there is no label; needed when ``alpha_mlm > 0``.
            student_hidden: ``(B, L, H)`` last hidden states; needed when ``alpha_cos > 0``.
            teacher_hidden: same shape; needed when ``alpha_cos > 0``.
            attention_mask: ``(B, L)``, 1 for real tokens; selects the positions of the cosine loss.
            positions: ``student_logits.shape[:-1]`` booleans selecting the rows of the soft loss
                (None: all rows).

        Returns:
            A :class:`DistillationLossOutput` with the total and the un-weighted terms.
        """
        w = self.weights
        soft = hard = cos = None
        total: torch.Tensor | None = None
        if w.alpha_ce > 0:
            self._require("alpha_ce", w.alpha_ce, student_logits=student_logits, teacher_logits=teacher_logits)
            _check_logit_pair(student_logits, teacher_logits)
            s = _select_rows(student_logits, positions, "the logits")
            t = _select_rows(teacher_logits, positions, "the logits")
            soft = soft_target_loss(s, t, w.temperature)
            total = w.alpha_ce * soft
        if w.alpha_mlm > 0:
            self._require("alpha_mlm", w.alpha_mlm, student_logits=student_logits, labels=labels)
            hard = hard_loss(student_logits, labels)
            total = w.alpha_mlm * hard if total is None else total + w.alpha_mlm * hard
        if w.alpha_cos > 0:
            self._require("alpha_cos", w.alpha_cos, student_hidden=student_hidden, teacher_hidden=teacher_hidden)
            cos = cosine_loss(student_hidden, teacher_hidden, attention_mask)
            total = w.alpha_cos * cos if total is None else total + w.alpha_cos * cos
        assert total is not None  # the weights' validation guarantees one positive weight
        return DistillationLossOutput(loss=total, soft=soft, hard=hard, cosine=cos)

    @staticmethod
    def _require(weight_name: str, weight: float, **inputs: torch.Tensor | None) -> None:
        missing = [name for name, value in inputs.items() if value is None]
        if missing:
            raise ValueError(
                f"{weight_name}={weight} > 0 but {', '.join(missing)} {'was' if len(missing) == 1 else 'were'} "
                f"not given: pass {' and '.join(missing)}, or set {weight_name}=0 to switch that term off."
            )
