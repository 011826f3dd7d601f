"""Model configurations for the teacher (BERT) and the student (DistilBERT).

Both are plain dataclasses that check themselves when they are built, so that a
bad configuration fails at once with a message that says what is wrong and how
to fix it, rather than as a shape error deep inside a forward pass.

The defaults are BERT-base (Devlin et al., 2019): 12 layers, hidden size 768,
12 heads, feed-forward size 3072, 512 positions, a 30,522-token WordPiece
vocabulary. A DistilBERT student keeps the width and the heads and halves the
depth (Sanh et al., 2019).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation of GELU used by GPT-2 (``gelu_new``)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


#: ``hidden_act`` names and their functions (BERT: ``"gelu"``, the exact erf form). The one list of them.
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": gelu_tanh,
    "relu": F.relu,
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
}


class ConfigError(ValueError):
    """A configuration that cannot describe a working model."""


@dataclass
class EncoderConfig:
    """What BERT and DistilBERT have in common: a stack of identical post-LayerNorm encoder layers.

    Attributes:
        vocab_size: number of WordPiece tokens, V.
        hidden_size: width of every token vector, H.
        num_layers: number of encoder layers, N.
        num_heads: attention heads per layer, A. H must be divisible by A; each head has width H / A.
        intermediate_size: inner width of the feed-forward block (4H in BERT).
        max_position_embeddings: rows of the learned position table: the longest sequence the model accepts.
        hidden_act: activation of the feed-forward block; BERT uses the exact (erf) GELU, ``"gelu"``.
        hidden_dropout: dropout on embeddings and on each sub-layer's output.
        attention_dropout: dropout on the attention weights.
        layer_norm_eps: epsilon of every LayerNorm.
        initializer_range: standard deviation of the normal initialisation.
        pad_token_id: id of the padding token.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first problem found, and its fix."""
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}.")
        if self.hidden_size % self.num_heads != 0:
            divisors = [a for a in range(1, min(self.hidden_size, 64) + 1) if self.hidden_size % a == 0]
            raise ConfigError(
                f"hidden_size={self.hidden_size} is not divisible by num_heads={self.num_heads}: every head "
                f"must get hidden_size / num_heads dimensions. Choose num_heads among {divisors} or change "
                f"hidden_size to a multiple of {self.num_heads}."
            )
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"Unknown hidden_act {self.hidden_act!r}; use one of {tuple(ACTIVATIONS)}.")
        for name in ("hidden_dropout", "attention_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}.")
        if self.layer_norm_eps <= 0:
            raise ConfigError(f"layer_norm_eps must be positive, got {self.layer_norm_eps!r}.")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ConfigError(
                f"pad_token_id={self.pad_token_id} is outside the vocabulary (size {self.vocab_size})."
            )

    def check_sequence_length(self, length: int) -> None:
        """Refuse a sequence longer than the position table, saying how to fix it."""
        if length > self.max_position_embeddings:
            raise ValueError(
                f"Sequence length {length} exceeds max_position_embeddings={self.max_position_embeddings}: "
                f"the model has no position vector for positions >= {self.max_position_embeddings}. "
                f"Truncate the inputs (tokenizer(..., truncation=True, max_length="
                f"{self.max_position_embeddings})) or build a model with a larger position table."
            )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"Unknown {cls.__name__} fields {sorted(unknown)}; known fields: {sorted(known)}.")
        return cls(**d)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


@dataclass
class BertConfig(EncoderConfig):
    """The teacher: BERT (Devlin et al., 2019). Adds segment (token-type) embeddings and the pooler."""

    type_vocab_size: int = 2

    def validate(self) -> None:
        super().validate()
        if self.type_vocab_size < 1:
            raise ConfigError(f"type_vocab_size must be >= 1 (BERT uses 2 segments), got {self.type_vocab_size}.")


@dataclass
class DistilBertConfig(EncoderConfig):
    """The student: DistilBERT (Sanh et al., 2019).

    Same hidden size, heads, feed-forward size and position table as the teacher; half the layers;
    no token-type embeddings and no pooler. ``sinusoidal_pos_embds`` mirrors the Hugging Face option
    and stays False: DistilBERT learns its position embeddings, initialised from the teacher's.
    """

    num_layers: int = 6
    sinusoidal_pos_embds: bool = field(default=False)

    def validate(self) -> None:
        super().validate()
        if self.sinusoidal_pos_embds:
            raise ConfigError("sinusoidal_pos_embds=True is not supported: DistilBERT learns its positions.")

    @classmethod
    def from_teacher(cls, teacher: BertConfig, num_layers: int | None = None) -> DistilBertConfig:
        """The DistilBERT recipe: copy every dimension of the teacher, keep half of its layers."""
        shared = {f.name: getattr(teacher, f.name) for f in dataclasses.fields(EncoderConfig)}
        shared["num_layers"] = num_layers if num_layers is not None else max(1, teacher.num_layers // 2)
        return cls(**shared)
