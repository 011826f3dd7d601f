"""studentbert: train a student BERT by distillation, from first principles.

The package behind the book, one concept a module, in layers (each imports only from the layers before it;
``tests/test_layers.py`` checks it):

* core: :mod:`.config`, :mod:`.attention`, :mod:`.encoder`, :mod:`.bert`, :mod:`.distilbert` (models with
  Hugging Face parity), :mod:`.losses`, :mod:`.optim`, :mod:`.checkpoint`, :mod:`.stopping`, :mod:`.training`
  (the one training loop), :mod:`.profiles`, :mod:`.flops`, :mod:`.gpus`, :mod:`.hardware`, :mod:`.report`;
* interop: :mod:`.convert`, :mod:`.hf` (model directories), :mod:`.student_init`, :mod:`.hf_trainer`;
* data: :mod:`.data` (lexicon, corpus, sentiment, tagging, text, tokenizer, pretraining, segments);
* measurement: :mod:`.evaluation`, :mod:`.speed`;
* stages, each taking its inputs: :mod:`.pretrain`, :mod:`.distill`, :mod:`.finetune`;
* :mod:`.experiments` (compare, ablation); :mod:`.artifacts` (the chapters' cache); :mod:`.standins`,
  :mod:`.export`; :mod:`.cli`.
"""

from .attention import MultiHeadAttention, attention_math, padding_mask
from .bert import (
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertModel,
    PreTrainingOutput,
)
from .config import BertConfig, ConfigError, DistilBertConfig, EncoderConfig
from .convert import CheckpointMismatchError, from_transformers, to_transformers
from .distilbert import (
    DistilBertForMaskedLM,
    DistilBertForSequenceClassification,
    DistilBertModel,
    MaskedLMOutput,
)
from .encoder import count_parameters
from .hf import load_pretrained, save_pretrained
from .losses import (
    cosine_loss,
    hard_loss,
    soft_cross_entropy,
    soft_target_loss,
    softmax_with_temperature,
    two_term_loss,
)
from .profiles import Profile, get_profile
from .student_init import IncompatibleModelsError, default_layer_map, init_student_from_teacher
from .triple_loss import DistillationLoss, DistillationLossOutput, DistillationLossWeights

__version__ = "0.1.0"

__all__ = [
    "BertConfig", "BertForMaskedLM", "BertForPreTraining", "BertForSequenceClassification", "BertModel", "CheckpointMismatchError",
    "ConfigError", "DistilBertConfig", "DistillationLoss", "DistillationLossOutput", "DistillationLossWeights",
    "Profile", "cosine_loss", "get_profile", "hard_loss", "soft_cross_entropy", "soft_target_loss",
    "softmax_with_temperature", "two_term_loss", "DistilBertForMaskedLM", "DistilBertForSequenceClassification",
    "DistilBertModel", "EncoderConfig", "IncompatibleModelsError", "MaskedLMOutput", "MultiHeadAttention",
    "PreTrainingOutput", "attention_math", "count_parameters", "default_layer_map", "from_transformers",
    "init_student_from_teacher", "load_pretrained", "padding_mask", "save_pretrained", "to_transformers",
]
