"""Scaled dot-product attention and multi-head self-attention.

Two implementations of the same function live here:

* :func:`attention_math` writes the formula out,
  ``softmax(Q K^T / sqrt(d) + mask) V``, and returns the attention weights so
  that the book can plot them;
* the fast path calls :func:`torch.nn.functional.scaled_dot_product_attention`,
  which fuses the same computation into one kernel (FlashAttention or the
  memory-efficient kernel on a GPU, a fused CPU kernel at inference) and need
  not materialise the weights (with attention dropout in training, the CPU falls
  back to the same math as :func:`attention_math`).

:class:`MultiHeadAttention` uses the fast path unless it is asked for the
weights; a test checks that both agree.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import EncoderConfig


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Turn a ``(B, L)`` 0/1 tokenizer mask into a boolean ``(B, 1, 1, L)`` mask, True where a key may be attended.

    The two singleton axes broadcast over heads and over query positions: every query may look at
    every real token and at no padding token.
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must have shape (batch, length), got {tuple(attention_mask.shape)}.")
    return attention_mask.bool()[:, None, None, :]


def attention_math(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention, written as the equation.

    Args:
        q: queries ``(B, A, Lq, d)``.
        k: keys ``(B, A, Lk, d)``.
        v: values ``(B, A, Lk, d)``.
        mask: boolean, broadcastable to ``(B, A, Lq, Lk)``; True = may attend.
        dropout_p: dropout on the weights (only when ``training``).

    Returns:
        ``(output, weights)``: output ``(B, A, Lq, d)``; weights ``(B, A, Lq, Lk)``, each row sums to 1.
    """
    d = q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, A, Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    weights = scores.softmax(dim=-1)  # (B, A, Lq, Lk)
    if training and dropout_p > 0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ v, weights  # (B, A, Lq, d)


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention with one fused Q/K/V projection (as in nanoGPT).

    ``qkv`` maps ``H -> 3H``: the first H outputs are the queries, the next H the keys,
    the last H the values (the Hugging Face converters split and join them in this order).
    ``out`` maps the concatenated heads back to ``H``.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.dropout_p = config.attention_dropout
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        self.out = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        return_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Args:
            x: ``(B, L, H)`` token vectors.
            mask: boolean ``(B, 1, 1, L)`` from :func:`padding_mask`, or None for no padding.
            return_weights: use :func:`attention_math` and return the ``(B, A, L, L)`` weights.

        Returns:
            ``(y, weights)`` with ``y`` of shape ``(B, L, H)``; ``weights`` is None on the fast path.
        """
        B, L, H = x.shape
        # (B, L, 3H) -> (B, L, 3, A, d) -> three tensors of shape (B, A, L, d)
        q, k, v = self.qkv(x).view(B, L, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        if return_weights:
            y, weights = attention_math(q, k, v, mask, self.dropout_p, self.training)
        else:
            dropout_p = self.dropout_p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
            weights = None
        y = y.transpose(1, 2).reshape(B, L, H)  # concatenate the heads: (B, L, A*d)
        return self.out(y), weights
