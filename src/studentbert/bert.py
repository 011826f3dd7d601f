"""BERT, the teacher (Devlin et al., 2019): encoder, pooler and the two pretraining heads.

``BertForPreTraining`` returns masked-language-model logits for every position
(or only for the positions asked for) and next-sentence-prediction logits for
the ``[CLS]`` vector after the pooler. ``BertForMaskedLM`` is the same model
without the pooler and the NSP head: what ``transformers``' ``run_mlm.py``
saves, and the class that the hub's ``bert-base-uncased`` config names.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import BertConfig
from .encoder import Encoder, EncoderOutput, MLMHead, init_weights, select_positions


class BertModel(nn.Module):
    """The BERT encoder plus the pooler (``tanh(W h_[CLS] + b)``), which only the NSP and classification heads use."""

    def __init__(self, config: BertConfig, add_pooler: bool = True) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config, type_vocab_size=config.type_vocab_size)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size) if add_pooler else None
        init_weights(self, config.initializer_range)

    @property
    def embeddings(self):
        return self.encoder.embeddings

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> tuple[EncoderOutput, torch.Tensor | None]:
        """``(B, L)`` ids -> (encoder output with ``(B, L, H)`` states, pooled ``(B, H)`` or None)."""
        out = self.encoder(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        pooled = torch.tanh(self.pooler(out.last_hidden_state[:, 0])) if self.pooler is not None else None
        return out, pooled


@dataclass
class PreTrainingOutput:
    """Attributes:
    mlm_logits: ``(B, L, V)``, or ``(M, V)`` for the ``M`` positions selected by ``mlm_positions``.
    nsp_logits: ``(B, 2)``; index 0 = "B follows A" (IsNext), 1 = "B is random" (NotNext), as in BERT.
    encoder: the encoder output (hidden states, attentions).
    """

    mlm_logits: torch.Tensor
    nsp_logits: torch.Tensor | None  # None for BertForMaskedLM, which has no NSP head
    encoder: EncoderOutput


class BertForMaskedLM(nn.Module):
    """BERT with the masked-LM head only: no pooler, no next-sentence head (``transformers.BertForMaskedLM``).

    The MLM head's decoder is tied to the word embeddings. Distillation needs nothing more from a teacher:
    its MLM logits and its hidden states.
    """

    next_sentence = False  # BertForPreTraining adds the pooler and the next-sentence head

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config, add_pooler=self.next_sentence)
        self.mlm = MLMHead(config, self.bert.embeddings.word)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        mlm_positions: torch.Tensor | None = None,
        output_hidden_states: bool = False,
        output_attentions: bool = False,
    ) -> PreTrainingOutput:
        """Args:
        input_ids, attention_mask, token_type_ids: ``(B, L)``.
        mlm_positions: optional boolean ``(B, L)``: compute MLM logits only there (the masked tokens), which
            saves the ``(B, L, V)`` projection when only ~15% of positions carry a loss.

        ``nsp_logits`` is None without the next-sentence head.
        """
        out, pooled = self.bert(input_ids, attention_mask, token_type_ids, output_hidden_states, output_attentions)
        mlm_logits = self.mlm(select_positions(out.last_hidden_state, mlm_positions))
        nsp_logits = self.nsp(pooled) if self.next_sentence else None  # (B, 2)
        return PreTrainingOutput(mlm_logits=mlm_logits, nsp_logits=nsp_logits, encoder=out)


class BertForPreTraining(BertForMaskedLM):
    """BERT with the masked-LM head and, on the pooled ``[CLS]`` vector, the next-sentence head."""

    next_sentence = True

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.nsp = nn.Linear(config.hidden_size, 2)
        init_weights(self.nsp, config.initializer_range)


class BertForSequenceClassification(nn.Module):
    """BERT + pooler + dropout + linear classifier, as ``transformers.BertForSequenceClassification``."""

    def __init__(self, config: BertConfig, num_labels: int, classifier_dropout: float | None = None) -> None:
        super().__init__()
        self.config = config
        self.num_labels = num_labels
        self.bert = BertModel(config)
        p = config.hidden_dropout if classifier_dropout is None else classifier_dropout
        self.dropout = nn.Dropout(p)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        init_weights(self.classifier, config.initializer_range)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, L)`` ids -> ``(B, num_labels)`` logits."""
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids)
        return self.classifier(self.dropout(pooled))
