"""How many floating-point operations a forward pass, a pretraining step and a distillation step take.

Counted analytically, from the configuration and the shapes, the way model FLOPs utilisation (MFU) is
usually counted: only the matrix multiplications, 2 FLOPs per multiply-add; embedding look-ups, biases,
LayerNorms, GELU, softmax and the losses are left out (they are a few percent of the work at BERT's sizes,
and they run on vector units, not on the matrix units whose peak MFU divides by).

Per token, forward, with ``H`` hidden size, ``I`` feed-forward size, ``L`` sequence length, ``V`` vocabulary:

* one encoder layer: ``2 (4 H^2 + 2 H I)`` for the Q/K/V, output and two feed-forward matrices, plus
  ``4 L H`` for attention (``Q K^T`` and ``softmax(.) V``, each ``2 L H`` per query over all heads);
* the MLM head, at the positions where logits are computed: ``2 (H^2 + H V)`` (dense + tied decoder);
* the pooler and NSP head of the teacher, once per *sequence*: ``2 (H^2 + 2 H)``.

A backward pass costs twice its forward (one product for the gradient of the input, one for the gradient
of the weight), so a training step costs 3 x forward. Hence, with ``T = B L`` tokens,

    pretraining step   = 3 [ n_layers T (8 H^2 + 4 H I + 4 L H) + M 2 (H^2 + H V) + B 2 (H^2 + 2 H) ]
    distillation step  = teacher forward (logits at the R rows)  +  3 x student forward (logits at R rows)

where ``M`` is the number of masked positions (pretraining computes MLM logits only there) and ``R`` the
number of rows whose logits the distillation loss compares (every real token, DistilBERT's objective).
This is the familiar ``6 N T`` (+ attention ``12 n_layers L H T``) for training and ``2 N T`` for the
teacher's forward pass, with ``N`` the parameters of the matrices a token goes through. ``tests/test_benchmarks.py``
checks these formulas against :class:`torch.utils.flop_counter.FlopCounterMode` on a small model.
"""

from __future__ import annotations

from .config import BertConfig, EncoderConfig


def layer_matmul_params(c: EncoderConfig) -> int:
    """Weights of one encoder layer's matrices (Q/K/V, output, feed-forward up and down)."""
    return 4 * c.hidden_size**2 + 2 * c.hidden_size * c.intermediate_size


def encoder_forward_flops(c: EncoderConfig, batch: int, length: int) -> int:
    """Matrix FLOPs of the encoder stack (embeddings cost none) for ``batch`` sequences of ``length`` tokens."""
    tokens = batch * length
    per_token_per_layer = 2 * layer_matmul_params(c) + 4 * length * c.hidden_size
    return c.num_layers * tokens * per_token_per_layer


def mlm_head_flops(c: EncoderConfig, rows: int) -> int:
    """The MLM head (dense + decoder to the vocabulary) at ``rows`` positions."""
    return rows * 2 * (c.hidden_size**2 + c.hidden_size * c.vocab_size)


def pooler_nsp_flops(c: EncoderConfig, batch: int) -> int:
    """The teacher's pooler and next-sentence head: once per sequence."""
    return batch * 2 * (c.hidden_size**2 + 2 * c.hidden_size)


def forward_flops(c: EncoderConfig, batch: int, length: int, logit_rows: int | None = None,
                  pooler: bool | None = None) -> int:
    """One forward pass: encoder + MLM head at ``logit_rows`` positions (None: every position; 0: no head)
    + pooler and NSP head (default: when ``c`` is a teacher's :class:`BertConfig`)."""
    rows = batch * length if logit_rows is None else logit_rows
    if pooler is None:
        pooler = isinstance(c, BertConfig)
    return (encoder_forward_flops(c, batch, length) + mlm_head_flops(c, rows)
            + (pooler_nsp_flops(c, batch) if pooler else 0))


def pretraining_step_flops(c: BertConfig, batch: int, length: int, masked: int) -> int:
    """Forward + backward of :func:`studentbert.pretrain.pretraining_loss`: MLM logits at the ``masked``
    positions only, NSP on every pair."""
    return 3 * forward_flops(c, batch, length, logit_rows=masked, pooler=True)


def distillation_step_flops(teacher: BertConfig, student: EncoderConfig, batch: int, length: int,
                            rows: int) -> dict[str, int]:
    """:class:`studentbert.distill.DistillationStep` + backward: the teacher's forward pass (logits at ``rows``)
    and the student's forward and backward passes (logits at ``rows``). Returns the parts and the total."""
    t = forward_flops(teacher, batch, length, logit_rows=rows, pooler=True)
    s = 3 * forward_flops(student, batch, length, logit_rows=rows, pooler=False)
    return {"teacher_forward": t, "student_forward_backward": s, "total": t + s}
