"""The losses of distillation: soft targets with a temperature, the hard (true-label) loss, the cosine loss.

A student learns from a teacher by matching the teacher's *softened* output distribution
(Hinton et al., 2015), on top of the ordinary loss on the true labels. DistilBERT (Sanh et al., 2019)
adds a third term that aligns the directions of the student's and the teacher's last hidden states:

.. math::

    L = \\alpha_{ce} L_{soft} + \\alpha_{mlm} L_{hard} + \\alpha_{cos} L_{cos},
    \\qquad \\alpha_{ce}=5,\\ \\alpha_{mlm}=2,\\ \\alpha_{cos}=1,\\ T=2 \\text{ in DistilBERT.}

Notation: ``z_s``, ``z_t`` are student and teacher logits; ``q = softmax(z_s / T)`` and
``p = softmax(z_t / T)`` the student's and the teacher's softened distributions; ``T`` the temperature.

Shapes: ``N`` rows (examples, or token positions flattened), ``V`` classes or vocabulary entries,
``B`` batch, ``L`` sequence length, ``H`` hidden size. Every loss accepts logits of shape ``(..., V)`` and
treats all leading dimensions as rows.

The triple loss that combines three of them, :class:`~studentbert.triple_loss.DistillationLoss`, is in
:mod:`studentbert.triple_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

REDUCTIONS = ("batchmean", "sum", "none")

__all__ = [
    "cosine_loss",
    "hard_loss",
    "soft_cross_entropy",
    "soft_target_loss",
    "softmax_with_temperature",
    "two_term_loss",
]


# --------------------------------------------------------------------------------------------- checks


def _check_temperature(temperature: float) -> None:
    if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not temperature > 0:
        raise ValueError(
            f"temperature must be a positive number, got {temperature!r}: softmax(z / T) is undefined for "
            f"T = 0 and reverses the ranking of the classes for T < 0. Use T = 1 for the plain softmax, "
            f"T > 1 to soften it (DistilBERT uses T = 2)."
        )


def check_alpha_temperature(alpha: float, temperature: float) -> None:
    """The arguments of :func:`two_term_loss`, checked before a run starts (ValueError with the reason)."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
        raise ValueError(
            f"alpha must be in [0, 1] (the weight of the hard loss; the soft loss gets 1 - alpha), got {alpha!r}."
        )
    _check_temperature(temperature)


def _check_reduction(reduction: str) -> None:
    if reduction == "mean":
        raise ValueError(
            "reduction='mean' would divide the summed KL divergence by N * V (rows times vocabulary), which "
            "is not a KL divergence and shrinks with the vocabulary. Use 'batchmean' (the mean over rows)."
        )
    if reduction not in REDUCTIONS:
        raise ValueError(f"Unknown reduction {reduction!r}; use one of {REDUCTIONS}.")


def _check_logit_pair(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    if student_logits.dim() == 0 or teacher_logits.dim() == 0:
        raise ValueError("Logits must have a last dimension of classes (shape (..., V)), got a scalar.")
    v_s, v_t = student_logits.size(-1), teacher_logits.size(-1)
    if v_s != v_t:
        raise ValueError(
            f"The student's and the teacher's vocabularies differ (student V={v_s}, teacher V={v_t}): "
            f"the soft-target loss compares distributions over the same classes, entry by entry. The student "
            f"must use the teacher's tokenizer and vocabulary (vocab_size={v_t}) or the teacher's label set."
        )
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"Student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} "
            f"have different leading shapes: each row of the student must be paired with the teacher's row "
            f"for the same example and position. Feed both models the same batch."
        )


def _select_rows(logits: torch.Tensor, positions: torch.Tensor | None, name: str) -> torch.Tensor:
    """``(..., V)`` logits -> ``(M, V)``: the rows where ``positions`` is True (all rows when it is None)."""
    if positions is None:
        return logits.reshape(-1, logits.size(-1))
    if positions.shape != logits.shape[:-1]:
        raise ValueError(
            f"positions {tuple(positions.shape)} must have the leading shape of {name} "
            f"{tuple(logits.shape)}, i.e. {tuple(logits.shape[:-1])}: one True/False per row."
        )
    return logits[positions.to(device=logits.device, dtype=torch.bool)]


def _zero(like: torch.Tensor) -> torch.Tensor:
    """A zero that stays connected to the graph of ``like`` (so ``backward()`` still works)."""
    return like.sum() * 0.0


# --------------------------------------------------------------------------------------------- soft targets


def softmax_with_temperature(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    r"""The softened distribution :math:`p_i = \exp(z_i / T) / \sum_j \exp(z_j / T)` over the last dimension.

    ``T = 1`` is the ordinary softmax; ``T > 1`` flattens it (more probability on the unlikely classes,
    whose *ratios* :math:`p_i / p_j = \exp((z_i - z_j)/T)` move towards 1 but keep their order);
    ``T -> 0`` approaches the one-hot arg-max; ``T -> infinity`` the uniform distribution.

    Args:
        logits: ``(..., V)``.
        temperature: ``T > 0``.

    Returns:
        ``(..., V)`` probabilities that sum to 1 over the last dimension.
    """
    _check_temperature(temperature)
    return F.softmax(logits / temperature, dim=-1)


def soft_target_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 2.0,
    reduction: str = "batchmean",
) -> torch.Tensor:
    r"""The distillation loss: :math:`T^2 \, \mathrm{KL}(p \,\|\, q)` with :math:`p = \mathrm{softmax}(z_t/T)`,
    :math:`q = \mathrm{softmax}(z_s/T)`, averaged over the rows.

    .. math::

        L_{soft} = \frac{T^2}{N} \sum_{n=1}^{N} \sum_{i=1}^{V} p_{n,i} \left(\log p_{n,i} - \log q_{n,i}\right)

    **Why KL and not cross-entropy.** :math:`\mathrm{KL}(p\|q) = H(p, q) - H(p)`: the cross-entropy to
    the teacher's soft labels minus the teacher's entropy. The teacher's entropy does not depend on the
    student, so both losses have *identical gradients* with respect to the student; KL is just
    shifted to reach 0 when the student matches the teacher exactly, which makes it easier to read in a
    log. (:func:`soft_cross_entropy` gives the cross-entropy form.)

    **Why the factor T².** The gradient with respect to a student logit is
    :math:`\partial\,\mathrm{KL} / \partial z_{s,i} = (q_i - p_i) / T`, and for large ``T``,
    :math:`q_i - p_i \approx (z_{s,i} - z_{t,i}) / (V T)` (zero-mean logits): the gradient falls like
    :math:`1/T^2` (Hinton et al., 2015, section 2.1). Multiplying by :math:`T^2` keeps its size roughly
    independent of the temperature, so that changing ``T`` does not silently re-weight the soft loss
    against the hard loss, whose gradient does not depend on ``T``.

    Computed as ``F.kl_div(log_softmax(z_s/T), log_softmax(z_t/T), log_target=True)``: both
    distributions stay in log space, which avoids ``0 * log 0`` and underflow for confident teachers.
    The teacher should be run under ``torch.no_grad()``; nothing here detaches it.

    Args:
        student_logits: ``(..., V)``; flattened to ``(N, V)``.
        teacher_logits: same shape as ``student_logits``.
        temperature: ``T > 0``; DistilBERT uses 2.
        reduction: ``"batchmean"`` (mean over the ``N`` rows; the KL divergence per row, averaged),
            ``"sum"`` (sum over rows) or ``"none"`` (one value per row, shape ``(...)``).

    Returns:
        A scalar (``"batchmean"``, ``"sum"``), or the per-row losses of shape ``student_logits.shape[:-1]``.
        With no rows at all (``N = 0``) the ``"batchmean"`` loss is 0, not NaN.

    Raises:
        ValueError: if ``temperature <= 0``, if the vocabularies (last dimensions) differ, or if the
            leading shapes differ.
    """
    _check_temperature(temperature)
    _check_reduction(reduction)
    _check_logit_pair(student_logits, teacher_logits)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    log_p = F.log_softmax(teacher_logits / temperature, dim=-1)
    scale = temperature**2
    if reduction == "none":
        return scale * F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)
    log_q, log_p = log_q.reshape(-1, log_q.size(-1)), log_p.reshape(-1, log_p.size(-1))
    if log_q.size(0) == 0:
        return _zero(student_logits)
    return scale * F.kl_div(log_q, log_p, log_target=True, reduction=reduction)


def soft_cross_entropy(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 2.0,
    reduction: str = "batchmean",
) -> torch.Tensor:
    r"""Cross-entropy to the teacher's soft labels, :math:`T^2 H(p, q) = -T^2 \sum_i p_i \log q_i`, per row.

    .. math::

        T^2 H(p, q) = T^2\,\mathrm{KL}(p\,\|\,q) + T^2 H(p), \qquad H(p) = -\sum_i p_i \log p_i

    so it equals :func:`soft_target_loss` plus ``T²`` times the teacher's entropy, a constant for the
    student: the two losses have the same gradients. This form is the one written in most papers
    (Hinton et al., 2015); it is provided to check that equivalence. Same arguments, shapes and
    ``T²`` factor as :func:`soft_target_loss`.
    """
    _check_temperature(temperature)
    _check_reduction(reduction)
    _check_logit_pair(student_logits, teacher_logits)
    log_q = F.log_softmax(student_logits / temperature, dim=-1)
    p = F.softmax(teacher_logits / temperature, dim=-1)
    per_row = -(temperature**2) * (p * log_q).sum(-1)  # (...)
    if reduction == "none":
        return per_row
    if reduction == "sum":
        return per_row.sum()
    return per_row.mean() if per_row.numel() else _zero(student_logits)


# --------------------------------------------------------------------------------------------- hard, cosine


def hard_loss(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    r"""Cross-entropy with the true labels, :math:`-\frac{1}{|S|}\sum_{n \in S} \log \mathrm{softmax}(z_n)_{y_n}`.

    ``S`` is the set of rows whose label is not ``ignore_index``. For masked-language modelling the labels
    are the original token ids at the masked positions and ``-100`` everywhere else, so only the masked
    positions count; for classification every example has a label. No temperature: this is the plain
    softmax (``T = 1``).

    Args:
        logits: ``(..., V)``, e.g. ``(B, L, V)`` for MLM or ``(B, C)`` for classification.
        labels: ``logits.shape[:-1]`` integer class ids, ``ignore_index`` where there is no label.
        ignore_index: label value to skip.

    Returns:
        A scalar: the mean over the labelled rows (0, not NaN, when no row has a label).
    """
    if labels.shape != logits.shape[:-1]:
        raise ValueError(
            f"labels {tuple(labels.shape)} must have the leading shape of logits {tuple(logits.shape)}, "
            f"i.e. {tuple(logits.shape[:-1])}: one class id (or {ignore_index}) per row of logits."
        )
    flat_labels = labels.reshape(-1)
    if not (flat_labels != ignore_index).any():
        return _zero(logits)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), flat_labels, ignore_index=ignore_index)


def cosine_loss(
    student_hidden: torch.Tensor,
    teacher_hidden: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    r"""Mean over the real (non-padding) positions of :math:`1 - \cos(h_s, h_t)`.

    .. math::

        L_{cos} = \frac{1}{|S|} \sum_{n \in S} \left(1 - \frac{h_{s,n} \cdot h_{t,n}}{\|h_{s,n}\|\,\|h_{t,n}\|}\right)

    It compares directions only: scaling a student vector by any positive number leaves the loss
    unchanged. This is DistilBERT's ``nn.CosineEmbeddingLoss`` with target 1 over the positions where
    ``attention_mask`` is 1 (Sanh et al., 2019); its range is ``[0, 2]`` (0: same direction,
    1: orthogonal, 2: opposite).

    Args:
        student_hidden: ``(..., H)``, e.g. the student's last hidden states ``(B, L, H)``.
        teacher_hidden: same shape.
        attention_mask: ``student_hidden.shape[:-1]``, 1 (or True) for real tokens, 0 for padding;
            ``None`` uses every position.

    Returns:
        A scalar (0, not NaN, when no position is selected).
    """
    if student_hidden.size(-1) != teacher_hidden.size(-1):
        h_s, h_t = student_hidden.size(-1), teacher_hidden.size(-1)
        raise ValueError(
            f"The student's and the teacher's hidden sizes differ (student H={h_s}, teacher H={h_t}); add a "
            f"projection (e.g. nn.Linear({h_s}, {h_t}) on the student's states) or use the teacher's hidden "
            f"size, as DistilBERT does: the cosine loss compares vectors of the same space."
        )
    if student_hidden.shape != teacher_hidden.shape:
        raise ValueError(
            f"Student hidden states {tuple(student_hidden.shape)} and teacher hidden states "
            f"{tuple(teacher_hidden.shape)} have different leading shapes: feed both models the same batch."
        )
    s = _select_rows(student_hidden, attention_mask, "the hidden states")  # (M, H)
    t = _select_rows(teacher_hidden, attention_mask, "the hidden states")  # (M, H)
    if s.size(0) == 0:
        return _zero(student_hidden)
    return (1.0 - F.cosine_similarity(s, t, dim=-1)).mean()


def two_term_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    alpha: float,
    temperature: float,
    ignore_index: int = -100,
) -> torch.Tensor:
    r"""Hinton's classic task-distillation loss, a weighted average of a hard and a soft term.

    .. math::

        L = \alpha \, H(y, q^{(1)}) + (1 - \alpha)\, T^2\, \mathrm{KL}\big(p^{(T)} \,\|\, q^{(T)}\big)

    where :math:`q^{(1)}` is the student's ordinary softmax and :math:`p^{(T)}, q^{(T)}` the softened
    distributions. **The T² factor is included**, as Hinton et al. (2015) recommend whenever hard and
    soft targets are mixed: without it the soft term's gradient would shrink like :math:`1/T^2` and
    ``alpha`` would mean something different at every temperature. The soft term is the KL divergence
    (:func:`soft_target_loss`), which differs from the cross-entropy :math:`H(p^{(T)}, q^{(T)})` written in
    the paper only by the constant :math:`(1-\alpha) T^2 H(p^{(T)})`: same gradients, different value.

    It is exactly ``DistillationLoss(alpha_ce=1 - alpha, alpha_mlm=alpha, alpha_cos=0, temperature=T)``.

    Args:
        student_logits: ``(N, C)`` (or ``(..., C)``; every row enters the soft term).
        teacher_logits: same shape.
        labels: ``student_logits.shape[:-1]`` class ids (``ignore_index`` to skip a row in the hard term).
        alpha: weight of the hard term, in ``[0, 1]``.
        temperature: ``T > 0``.
        ignore_index: label value to skip.

    Returns:
        A scalar.
    """
    check_alpha_temperature(alpha, temperature)
    loss = None
    if alpha > 0:
        loss = alpha * hard_loss(student_logits, labels, ignore_index)
    if alpha < 1:
        soft = (1.0 - alpha) * soft_target_loss(student_logits, teacher_logits, temperature)
        loss = soft if loss is None else loss + soft
    return loss
