"""Tests for the distillation losses: hand-computed values, the KL/cross-entropy equivalence, the T² gradient
scaling, the high-temperature (logit-matching) limit, padding, and the error messages."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from studentbert.losses import (
    cosine_loss,
    hard_loss,
    soft_cross_entropy,
    soft_target_loss,
    softmax_with_temperature,
    two_term_loss,
)
from studentbert.triple_loss import DistillationLoss, DistillationLossOutput, DistillationLossWeights

DTYPE = torch.float64


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def student_grad(loss_fn, student: torch.Tensor, *args, **kwargs) -> torch.Tensor:
    z = student.clone().requires_grad_(True)
    loss_fn(z, *args, **kwargs).backward()
    return z.grad


# ------------------------------------------------------------------------------------- hand computations


def test_softmax_with_temperature_by_hand():
    z = torch.tensor([1.0, 0.0], dtype=DTYPE)
    # Two classes: softmax([a, b]) = [sigmoid(a - b), sigmoid(b - a)].
    torch.testing.assert_close(softmax_with_temperature(z, 1.0), torch.tensor([sigmoid(1), sigmoid(-1)], dtype=DTYPE))
    torch.testing.assert_close(softmax_with_temperature(z, 2.0), torch.tensor([sigmoid(0.5), sigmoid(-0.5)], dtype=DTYPE))
    # T -> 0: one-hot arg-max; T -> infinity: uniform.
    torch.testing.assert_close(softmax_with_temperature(z, 1e-3), torch.tensor([1.0, 0.0], dtype=DTYPE))
    torch.testing.assert_close(softmax_with_temperature(z, 1e9), torch.tensor([0.5, 0.5], dtype=DTYPE))


def test_soft_target_loss_by_hand():
    s = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    t = torch.tensor([[0.0, 1.0]], dtype=DTYPE)
    # T = 1: p = [sigmoid(-1), sigmoid(1)], q = [sigmoid(1), sigmoid(-1)].
    p = [sigmoid(-1), sigmoid(1)]
    q = [sigmoid(1), sigmoid(-1)]
    kl_1 = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert kl_1 == pytest.approx(math.tanh(0.5))  # closed form for this pair: (sigmoid(1) - sigmoid(-1)) * 1
    assert soft_target_loss(s, t, temperature=1.0).item() == pytest.approx(kl_1, rel=1e-12)
    # T = 2: logits halved, and the T² = 4 factor.
    p = [sigmoid(-0.5), sigmoid(0.5)]
    q = [sigmoid(0.5), sigmoid(-0.5)]
    kl_2 = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    assert soft_target_loss(s, t, temperature=2.0).item() == pytest.approx(4.0 * kl_2, rel=1e-12)
    assert 4.0 * kl_2 == pytest.approx(4.0 * 0.5 * math.tanh(0.25))
    # An asymmetric pair fixes the direction: KL(teacher || student), not KL(student || teacher).
    s, t = torch.tensor([[0.0, 0.0]], dtype=DTYPE), torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    p = [sigmoid(1), sigmoid(-1)]  # teacher; the student is uniform, q = [1/2, 1/2]
    forward_kl = sum(pi * math.log(pi / 0.5) for pi in p)
    reverse_kl = sum(0.5 * math.log(0.5 / pi) for pi in p)
    assert forward_kl != pytest.approx(reverse_kl, rel=0.05)
    assert soft_target_loss(s, t, temperature=1.0).item() == pytest.approx(forward_kl, rel=1e-12)


def test_soft_target_loss_reductions_and_leading_dims():
    s = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]], dtype=DTYPE)  # (1, 2, 2): two rows
    t = torch.tensor([[[0.0, 1.0], [0.0, 0.0]]], dtype=DTYPE)
    per_row = soft_target_loss(s, t, temperature=1.0, reduction="none")
    assert per_row.shape == (1, 2)
    torch.testing.assert_close(per_row, torch.tensor([[math.tanh(0.5), 0.0]], dtype=DTYPE))
    assert soft_target_loss(s, t, 1.0, "sum").item() == pytest.approx(math.tanh(0.5))
    assert soft_target_loss(s, t, 1.0, "batchmean").item() == pytest.approx(math.tanh(0.5) / 2)  # over rows, not V


def test_soft_cross_entropy_by_hand():
    s = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    t = torch.tensor([[0.0, 1.0]], dtype=DTYPE)
    p = [sigmoid(-1), sigmoid(1)]
    q = [sigmoid(1), sigmoid(-1)]
    ce = -sum(pi * math.log(qi) for pi, qi in zip(p, q, strict=True))
    assert soft_cross_entropy(s, t, temperature=1.0).item() == pytest.approx(ce, rel=1e-12)


def test_hard_loss_by_hand_ignores_unlabelled_rows():
    logits = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [3.0, -2.0]]], dtype=DTYPE)  # (1, 3, 2)
    labels = torch.tensor([[0, -100, 1]])
    # Row 0: -log sigmoid(1); row 1 ignored; row 2: -log sigmoid(-5).
    expected = (-math.log(sigmoid(1.0)) - math.log(sigmoid(-5.0))) / 2
    assert hard_loss(logits, labels).item() == pytest.approx(expected, rel=1e-12)
    # No label at all: 0, not NaN.
    assert hard_loss(logits, torch.full((1, 3), -100)).item() == 0.0


def test_cosine_loss_by_hand():
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], dtype=DTYPE)
    t = torch.tensor([[0.0, 1.0], [1.0, 1.0], [-2.0, 0.0]], dtype=DTYPE)
    # 1 - cos: orthogonal 1, at 45 degrees 1 - 1/sqrt(2), opposite 2.
    expected = (1.0 + (1.0 - 1.0 / math.sqrt(2.0)) + 2.0) / 3
    assert cosine_loss(s, t).item() == pytest.approx(expected, rel=1e-12)
    mask = torch.tensor([1, 1, 0])
    assert cosine_loss(s, t, mask).item() == pytest.approx((1.0 + 1.0 - 1.0 / math.sqrt(2.0)) / 2, rel=1e-12)


def test_cosine_loss_matches_cosine_embedding_loss():
    torch.manual_seed(0)
    s, t = torch.randn(2, 5, 8, dtype=DTYPE), torch.randn(2, 5, 8, dtype=DTYPE)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    sel = mask.bool()
    reference = torch.nn.CosineEmbeddingLoss()(s[sel], t[sel], torch.ones(int(sel.sum()), dtype=DTYPE))
    assert cosine_loss(s, t, mask).item() == pytest.approx(reference.item(), rel=1e-9)


# ------------------------------------------------------------------------------------- zeros and invariances


def test_identical_inputs_give_zero_loss():
    torch.manual_seed(0)
    z = torch.randn(4, 7, 11, dtype=DTYPE)
    for T in (0.5, 1.0, 2.0, 10.0):
        assert soft_target_loss(z, z.clone(), T).item() == pytest.approx(0.0, abs=1e-12)
    h = torch.randn(4, 7, 16, dtype=DTYPE)
    assert cosine_loss(h, h.clone()).item() == pytest.approx(0.0, abs=1e-12)
    # Direction, not length: a positively scaled copy is still a perfect match.
    assert cosine_loss(3.0 * h, h).item() == pytest.approx(0.0, abs=1e-12)


def test_soft_loss_is_positive_and_shift_invariant():
    torch.manual_seed(1)
    s, t = torch.randn(6, 9, dtype=DTYPE), torch.randn(6, 9, dtype=DTYPE)
    loss = soft_target_loss(s, t, 2.0)
    assert loss.item() > 0
    # Adding a constant to every logit of a row does not change its softmax.
    shifted = soft_target_loss(s + torch.randn(6, 1, dtype=DTYPE), t - 5.0, 2.0)
    assert shifted.item() == pytest.approx(loss.item(), rel=1e-10)


def test_cosine_loss_ignores_padding():
    torch.manual_seed(2)
    s, t = torch.randn(2, 6, 8, dtype=DTYPE), torch.randn(2, 6, 8, dtype=DTYPE)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])
    before = cosine_loss(s, t, mask)
    s2, t2 = s.clone(), t.clone()
    pad = mask == 0
    s2[pad] = torch.randn(int(pad.sum()), 8, dtype=DTYPE) * 100
    t2[pad] = -s2[pad]  # would be the worst possible match if it counted
    assert cosine_loss(s2, t2, mask).item() == pytest.approx(before.item(), rel=1e-12)
    assert cosine_loss(s2, t2).item() != pytest.approx(before.item(), rel=1e-3)  # without the mask it does count
    # Padding positions receive no gradient.
    s3 = s2.clone().requires_grad_(True)
    cosine_loss(s3, t2, mask).backward()
    assert torch.all(s3.grad[pad] == 0)


# ------------------------------------------------------------------------------------- KL vs cross-entropy


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_kl_and_soft_cross_entropy_differ_by_teacher_entropy(T):
    torch.manual_seed(3)
    s, t = torch.randn(5, 12, dtype=DTYPE) * 3, torch.randn(5, 12, dtype=DTYPE) * 3
    p = softmax_with_temperature(t, T)
    teacher_entropy = -(p * p.log()).sum(-1)  # (5,)
    kl = soft_target_loss(s, t, T)
    ce = soft_cross_entropy(s, t, T)
    assert (ce - kl).item() == pytest.approx(T**2 * teacher_entropy.mean().item(), rel=1e-10)
    torch.testing.assert_close(
        soft_cross_entropy(s, t, T, "none") - soft_target_loss(s, t, T, "none"), T**2 * teacher_entropy
    )
    # ... and identical gradients with respect to the student.
    torch.testing.assert_close(student_grad(soft_target_loss, s, t, T), student_grad(soft_cross_entropy, s, t, T))


def test_gradient_formula():
    """d(KL)/dz_s = (q - p) / T per row; batchmean divides by the number of rows N; T² multiplies."""
    torch.manual_seed(4)
    s, t = torch.randn(3, 6, dtype=DTYPE), torch.randn(3, 6, dtype=DTYPE)
    T = 3.0
    q, p = softmax_with_temperature(s, T), softmax_with_temperature(t, T)
    expected = T**2 * (q - p) / T / 3
    torch.testing.assert_close(student_grad(soft_target_loss, s, t, T), expected)


# ------------------------------------------------------------------------------------- temperature scaling


def _grad_norm(s: torch.Tensor, t: torch.Tensor, T: float, scaled: bool) -> float:
    def loss(z):
        value = soft_target_loss(z, t, T)
        return value if scaled else value / T**2  # soft_target_loss / T² is the plain KL

    return student_grad(loss, s).norm().item()


def test_unscaled_gradient_falls_like_one_over_t_squared():
    torch.manual_seed(5)
    s, t = torch.randn(8, 20, dtype=DTYPE), torch.randn(8, 20, dtype=DTYPE)
    ratio = _grad_norm(s, t, 10.0, scaled=False) / _grad_norm(s, t, 20.0, scaled=False)
    assert ratio == pytest.approx(4.0, rel=0.05)
    # With the T² factor the gradient size no longer depends on T (for large T).
    ratio_scaled = _grad_norm(s, t, 10.0, scaled=True) / _grad_norm(s, t, 20.0, scaled=True)
    assert ratio_scaled == pytest.approx(1.0, rel=0.05)


def test_high_temperature_gradient_is_logit_matching():
    """Hinton et al. (2015), sec. 2.1: for zero-mean logits and large T, dCE/dz_i -> (z_i - v_i) / (V T²)."""
    torch.manual_seed(6)
    V, T = 10, 100.0
    s, t = torch.randn(1, V, dtype=DTYPE), torch.randn(1, V, dtype=DTYPE)
    s, t = s - s.mean(), t - t.mean()
    grad = student_grad(lambda z: soft_cross_entropy(z, t, T) / T**2, s)  # the plain (un-scaled) CE
    torch.testing.assert_close(grad, (s - t) / (V * T**2), rtol=0.02, atol=0.0)


def test_high_temperature_loss_is_squared_logit_difference():
    """T² KL -> (1 / 2V) sum_i ((z_s,i - mean z_s) - (z_t,i - mean z_t))² as T -> infinity."""
    torch.manual_seed(7)
    V = 16
    s, t = torch.randn(1, V, dtype=DTYPE) + 3.0, torch.randn(1, V, dtype=DTYPE) - 1.0  # not zero-mean
    d = (s - s.mean()) - (t - t.mean())
    limit = (d**2).sum().item() / (2 * V)
    assert soft_target_loss(s, t, 1000.0).item() == pytest.approx(limit, rel=0.01)
    assert soft_target_loss(s, t, 1.0).item() != pytest.approx(limit, rel=0.05)  # not at T = 1


# ------------------------------------------------------------------------------------- the triple loss


def _toy_batch(seed: int = 8):
    g = torch.Generator().manual_seed(seed)
    B, L, V, H = 2, 5, 7, 4
    batch = {
        "student_logits": torch.randn(B, L, V, generator=g, dtype=DTYPE),
        "teacher_logits": torch.randn(B, L, V, generator=g, dtype=DTYPE),
        "student_hidden": torch.randn(B, L, H, generator=g, dtype=DTYPE),
        "teacher_hidden": torch.randn(B, L, H, generator=g, dtype=DTYPE),
        "attention_mask": torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]]),
        "labels": torch.tensor([[-100, 3, -100, 6, -100], [0, -100, -100, -100, -100]]),
    }
    return batch


def test_distillation_loss_defaults_are_distilberts():
    w = DistillationLoss().weights
    assert (w.alpha_ce, w.alpha_mlm, w.alpha_cos, w.temperature) == (5.0, 2.0, 1.0, 2.0)
    assert DistillationLossWeights() == w


def test_distillation_loss_is_the_weighted_sum():
    b = _toy_batch()
    positions = b["attention_mask"].bool()
    out = DistillationLoss()(**b, positions=positions)
    assert isinstance(out, DistillationLossOutput)
    soft = soft_target_loss(b["student_logits"][positions], b["teacher_logits"][positions], 2.0)
    hard = hard_loss(b["student_logits"], b["labels"])
    cos = cosine_loss(b["student_hidden"], b["teacher_hidden"], b["attention_mask"])
    assert out.loss.item() == pytest.approx(5.0 * soft.item() + 2.0 * hard.item() + 1.0 * cos.item(), rel=1e-12)
    assert out.soft.item() == pytest.approx(soft.item())
    assert out.hard.item() == pytest.approx(hard.item())
    assert out.cosine.item() == pytest.approx(cos.item())
    logged = out.to_dict()
    assert set(logged) == {"loss", "loss_soft", "loss_hard", "loss_cos"}
    assert all(isinstance(v, float) for v in logged.values())


def test_distillation_loss_by_hand():
    # One position, two classes: soft = 4 * 0.5 * tanh(1/4) at T = 2 (see test_soft_target_loss_by_hand),
    # hard = -log sigmoid(1), cos = 1 - 1/sqrt(2).
    s, t = torch.tensor([[1.0, 0.0]], dtype=DTYPE), torch.tensor([[0.0, 1.0]], dtype=DTYPE)
    hs, ht = torch.tensor([[1.0, 0.0]], dtype=DTYPE), torch.tensor([[1.0, 1.0]], dtype=DTYPE)
    out = DistillationLoss()(s, t, torch.tensor([0]), hs, ht)
    expected = 5.0 * 2.0 * math.tanh(0.25) + 2.0 * -math.log(sigmoid(1.0)) + 1.0 * (1.0 - 1.0 / math.sqrt(2.0))
    assert out.loss.item() == pytest.approx(expected, rel=1e-12)


def test_positions_select_the_soft_loss_rows():
    b = _toy_batch()
    loss = DistillationLoss(alpha_ce=1.0, alpha_mlm=0.0, alpha_cos=0.0)
    on_real = loss(b["student_logits"], b["teacher_logits"], positions=b["attention_mask"].bool()).soft
    on_masked = loss(b["student_logits"], b["teacher_logits"], positions=b["labels"] != -100).soft
    on_all = loss(b["student_logits"], b["teacher_logits"]).soft
    per_row = soft_target_loss(b["student_logits"], b["teacher_logits"], 2.0, reduction="none")  # (B, L)
    assert on_real.item() == pytest.approx(per_row[b["attention_mask"].bool()].mean().item())
    assert on_masked.item() == pytest.approx(per_row[b["labels"] != -100].mean().item())
    assert on_all.item() == pytest.approx(per_row.mean().item())
    assert len({round(x.item(), 8) for x in (on_real, on_masked, on_all)}) == 3


def test_zero_weight_terms_are_skipped_and_need_no_inputs():
    b = _toy_batch()
    out = DistillationLoss(alpha_ce=0.0, alpha_mlm=0.0, alpha_cos=1.0)(
        student_hidden=b["student_hidden"], teacher_hidden=b["teacher_hidden"], attention_mask=b["attention_mask"]
    )
    assert out.soft is None and out.hard is None
    assert out.loss.item() == pytest.approx(out.cosine.item())
    assert set(out.to_dict()) == {"loss", "loss_cos"}
    with pytest.raises(ValueError, match=r"alpha_cos=1.0 > 0 but student_hidden, teacher_hidden were not given"):
        DistillationLoss()(b["student_logits"], b["teacher_logits"], b["labels"])


def test_gradient_flows_only_to_the_student_terms():
    b = _toy_batch()
    s = b["student_logits"].clone().requires_grad_(True)
    h = b["student_hidden"].clone().requires_grad_(True)
    mask = b["attention_mask"]
    out = DistillationLoss()(s, b["teacher_logits"], b["labels"], h, b["teacher_hidden"], mask, positions=mask.bool())
    out.loss.backward()
    pad = mask == 0
    assert torch.all(s.grad[pad] == 0) and torch.all(h.grad[pad] == 0)  # padding untouched by every term
    assert s.grad[~pad].abs().sum() > 0 and h.grad[~pad].abs().sum() > 0


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.5, 1.0])
def test_two_term_loss_is_a_special_case(alpha):
    torch.manual_seed(9)
    s, t = torch.randn(6, 4, dtype=DTYPE), torch.randn(6, 4, dtype=DTYPE)
    y = torch.tensor([0, 1, 2, 3, 0, 1])
    T = 4.0
    two = two_term_loss(s, t, y, alpha=alpha, temperature=T)
    triple = DistillationLoss(alpha_ce=1.0 - alpha, alpha_mlm=alpha, alpha_cos=0.0, temperature=T)(s, t, y).loss
    assert two.item() == triple.item()
    expected = alpha * F.cross_entropy(s, y) + (1 - alpha) * T**2 * F.kl_div(
        F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean"
    )
    assert two.item() == pytest.approx(expected.item(), rel=1e-12)


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("T", [0.0, -1.0])
def test_non_positive_temperature_is_refused(T):
    z = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        soft_target_loss(z, z, T)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        softmax_with_temperature(z, T)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        DistillationLoss(temperature=T)
    with pytest.raises(ValueError, match="temperature must be a positive number"):
        two_term_loss(z, z, torch.zeros(2, dtype=torch.long), 0.5, T)


def test_zero_weight_sum_is_refused():
    with pytest.raises(ValueError, match="loss weights sum to zero: nothing would be learned"):
        DistillationLoss(alpha_ce=0.0, alpha_mlm=0.0, alpha_cos=0.0)


@pytest.mark.parametrize("name", ["alpha_ce", "alpha_mlm", "alpha_cos"])
def test_negative_weight_is_refused(name):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        DistillationLossWeights(**{name: -1.0})
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        DistillationLoss(**{name: float("nan")})


def test_vocabulary_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"vocabularies differ \(student V=100, teacher V=120\).*teacher's tokenizer"):
        soft_target_loss(torch.zeros(4, 100), torch.zeros(4, 120))
    with pytest.raises(ValueError, match="vocabularies differ"):
        DistillationLoss()(torch.zeros(2, 3, 100), torch.zeros(2, 3, 120), torch.zeros(2, 3, dtype=torch.long),
                           torch.zeros(2, 3, 8), torch.zeros(2, 3, 8))


def test_hidden_size_mismatch_is_refused():
    with pytest.raises(ValueError, match=r"hidden sizes differ.*add a projection.*use the teacher's hidden size"):
        cosine_loss(torch.zeros(2, 3, 384), torch.zeros(2, 3, 768))


def test_other_shape_errors():
    with pytest.raises(ValueError, match="different leading shapes"):
        soft_target_loss(torch.zeros(4, 10), torch.zeros(5, 10))
    with pytest.raises(ValueError, match="labels"):
        hard_loss(torch.zeros(2, 3, 10), torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="positions"):
        DistillationLoss(alpha_mlm=0, alpha_cos=0)(torch.zeros(2, 3, 10), torch.zeros(2, 3, 10),
                                                   positions=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="reduction='mean'"):
        soft_target_loss(torch.zeros(2, 3), torch.zeros(2, 3), reduction="mean")
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        two_term_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), 1.5, 2.0)
