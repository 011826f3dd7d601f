"""DistilBERT, the student (Sanh et al., 2019).

What changes from BERT, and what does not:

* **kept**: the hidden size, the number of heads, the feed-forward size, the post-LayerNorm layer, the
  *learned* position embeddings, the vocabulary and the tied MLM head;
* **removed**: the token-type (segment) embeddings and the pooler (both existed for next-sentence
  prediction, which DistilBERT drops);
* **halved**: the number of layers (12 -> 6). The width stays because the authors found that, for a
  fixed parameter budget, fewer layers speed inference up more than a narrower model does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import DistilBertConfig
from .encoder import Encoder, EncoderOutput, MLMHead, init_weights, select_positions


class DistilBertModel(nn.Module):
    """The DistilBERT encoder: word + position embeddings, ``N`` encoder layers, no pooler."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, type_vocab_size=0)
        init_weights(self, config.initializer_range)

    @property
    def embeddings(self):
        return self.encoder.embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> EncoderOutput:
        """``(B, L)`` ids -> encoder output with ``last_hidden_state`` of shape ``(B, L, H)``."""
        return self.encoder(input_ids, attention_mask, None, output_hidden_states, output_attentions)


@dataclass
class MaskedLMOutput:
    """Attributes:
    mlm_logits: ``(B, L, V)``, or ``(M, V)`` at the positions selected by ``mlm_positions``.
    encoder: the encoder output.
    """

    mlm_logits: torch.Tensor
    encoder: EncoderOutput


class DistilBertForMaskedLM(nn.Module):
    """DistilBERT with the masked-LM head (decoder tied to the word embeddings)."""

    def __init__(self, config: DistilBertConfig) -> None:
        super().__init__()
        self.config = config
        self.distilbert = DistilBertModel(config)
        self.mlm = MLMHead(config, self.distilbert.embeddings.word)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mlm_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> MaskedLMOutput:
        """``(B, L)`` ids -> MLM logits (all positions, or the ``(M, V)`` selected by boolean ``mlm_positions``)."""
        out = self.distilbert(input_ids, attention_mask, output_hidden_states, output_attentions)
        return MaskedLMOutput(self.mlm(select_positions(out.last_hidden_state, mlm_positions)), out)


class DistilBertForSequenceClassification(nn.Module):
    """As ``transformers.DistilBertForSequenceClassification``: [CLS] -> Dense -> ReLU -> Dropout -> Linear.

    With no pooler, DistilBERT's classification head brings its own ``pre_classifier`` layer.
    """

    def __init__(self, config: DistilBertConfig, num_labels: int, seq_classif_dropout: float = 0.2) -> None:
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = nn.Linear(config.hidden_size, config.hidden_size)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.dropout = nn.Dropout(seq_classif_dropout)
        init_weights(self.pre_classifier, config.initializer_range)
        init_weights(self.classifier, config.initializer_range)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` ids -> ``(B, num_labels)`` logits."""
        h = self.distilbert(input_ids, attention_mask).last_hidden_state[:, 0]  # (B, H): the [CLS] vector
        return self.classifier(self.dropout(torch.relu(self.pre_classifier(h))))
