"""The parts that BERT and DistilBERT share: embeddings, the post-LayerNorm encoder layer, the MLM head.

A DistilBERT layer is *exactly* a BERT layer (same sub-layers, same shapes, same
post-LayerNorm placement); that is what lets a student be initialised by copying
teacher layers. The two models differ only around the stack: DistilBERT has no
token-type embeddings, no pooler and half the layers.

Shapes: ``B`` batch, ``L`` sequence length, ``H`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import MultiHeadAttention, padding_mask
from .config import ACTIVATIONS, EncoderConfig


def activation(name: str):
    """The activation function called ``name`` in a config (:data:`studentbert.config.ACTIVATIONS`)."""
    return ACTIVATIONS[name]


class Embeddings(nn.Module):
    """Token vector = word embedding + learned position embedding (+ segment embedding), then LayerNorm, dropout.

    ``type_vocab_size=0`` builds the DistilBERT variant, which has no segment (token-type) table.
    """

    def __init__(self, config: EncoderConfig, type_vocab_size: int = 0) -> None:
        super().__init__()
        self.config = config
        self.word = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type = nn.Embedding(type_vocab_size, config.hidden_size) if type_vocab_size else None
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` ids -> ``(B, L, H)`` vectors."""
        L = input_ids.size(1)
        self.config.check_sequence_length(L)
        x = self.word(input_ids) + self.position.weight[:L]  # (B, L, H) + (L, H)
        if self.token_type is not None:
            if token_type_ids is None:
                x = x + self.token_type.weight[0]  # every token in segment A
            else:
                x = x + self.token_type(token_type_ids)
        return self.dropout(self.norm(x))


class EncoderLayer(nn.Module):
    """One post-LayerNorm Transformer encoder layer, as in BERT and DistilBERT.

    ``x = LN(x + Dropout(Attention(x)))`` then ``x = LN(x + Dropout(FFN(x)))``: the LayerNorm comes
    *after* the residual sum (post-LN, Vaswani et al. 2017; Devlin et al. 2019), not before it as in
    GPT-2 and most later models (pre-LN).
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.attention = MultiHeadAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn_up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_down = nn.Linear(config.intermediate_size, config.hidden_size)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.act = activation(config.hidden_act)
        self.dropout = nn.Dropout(config.hidden_dropout)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, return_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``(B, L, H) -> (B, L, H)``; with ``return_weights`` also the ``(B, A, L, L)`` attention weights."""
        a, weights = self.attention(x, mask, return_weights)
        x = self.attention_norm(x + self.dropout(a))
        f = self.ffn_down(self.act(self.ffn_up(x)))  # (B, L, 4H) inside
        x = self.ffn_norm(x + self.dropout(f))
        return x, weights


@dataclass
class EncoderOutput:
    """What an encoder stack returns.

    Attributes:
        last_hidden_state: ``(B, L, H)``.
        hidden_states: the embeddings' output and every layer's output, ``N + 1`` tensors of ``(B, L, H)``,
            when asked for.
        attentions: each layer's ``(B, A, L, L)`` weights, when asked for.
    """

    last_hidden_state: torch.Tensor
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


def attention_mask_for_sdpa(attention_mask: torch.Tensor | None) -> torch.Tensor | None:
    """The ``(B, 1, 1, L)`` mask that the layers get from a ``(B, L)`` tokenizer mask (None: no mask).

    A batch without padding needs no mask, which lets SDPA pick its fastest kernel. Finding that out reads the
    mask's values, so it is only done on a CPU, where it is cheap: on a GPU it would make the host wait for the
    device at every forward pass (a host-device synchronisation), and under ``torch.compile`` it would break the
    graph. There the mask is always passed; the result is the same either way.
    """
    if attention_mask is None:
        return None
    if attention_mask.device.type == "cpu" and not _compiling() and bool(attention_mask.all()):
        return None
    return padding_mask(attention_mask)


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and getattr(compiler, "is_compiling", lambda: False)())


class Encoder(nn.Module):
    """Embeddings followed by ``N`` identical encoder layers."""

    def __init__(self, config: EncoderConfig, type_vocab_size: int = 0) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config, type_vocab_size)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        """Args:
            input_ids: ``(B, L)`` token ids.
            attention_mask: ``(B, L)``, 1 for real tokens and 0 for padding (None: no padding).
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}.")
        mask = attention_mask_for_sdpa(attention_mask)
        x = self.embeddings(input_ids, token_type_ids)
        hidden, attentions = [x], []
        for layer in self.layers:
            x, weights = layer(x, mask, return_weights=output_attentions)
            hidden.append(x)
            attentions.append(weights)
        return EncoderOutput(
            last_hidden_state=x,
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None,
        )


class MLMHead(nn.Module):
    """Masked-language-model head: ``Dense -> activation -> LayerNorm -> decoder`` (BERT and DistilBERT alike).

    The decoder's weight is the word-embedding matrix itself (weight tying, Press & Wolf 2017): the logit of
    token ``t`` is the dot product of the transformed hidden vector with the embedding of ``t``, plus a bias.
    """

    def __init__(self, config: EncoderConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)
        self.decoder.weight = word_embeddings.weight  # tied: (V, H)
        init_weights(self.dense, config.initializer_range)  # not the decoder: its weight is the embedding
        nn.init.zeros_(self.decoder.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``(..., H) -> (..., V)`` logits."""
        return self.decoder(self.norm(self.act(self.dense(h))))


def init_weights(module: nn.Module, std: float) -> None:
    """BERT's initialisation: N(0, std) for linear and embedding weights, zero biases, LayerNorm = identity."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, std)
            if m.padding_idx is not None:
                with torch.no_grad():
                    m.weight[m.padding_idx].zero_()
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def select_positions(h: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
    """Keep the hidden vectors at ``positions`` (a boolean ``(B, L)`` mask) as ``(M, H)``; all of them if None."""
    return h if positions is None else h[positions]


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())
