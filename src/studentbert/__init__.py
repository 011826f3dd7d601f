"""studentbert: train a student BERT by distillation, from first principles.

The package behind the book: models with Hugging Face parity (:mod:`.bert`, :mod:`.distilbert`),
attention (:mod:`.attention`), student initialisation (:mod:`.student_init`), conversion and saving
(:mod:`.hf`), data, losses and training loops.
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
from .distilbert import (
    DistilBertForMaskedLM,
    DistilBertForSequenceClassification,
    DistilBertModel,
    MaskedLMOutput,
)
from .encoder import count_parameters
from .hf import (
    CheckpointMismatchError,
    from_transformers,
    load_pretrained,
    save_pretrained,
    to_transformers,
)
from .losses import (
    DistillationLoss,
    DistillationLossOutput,
    DistillationLossWeights,
    cosine_loss,
    hard_loss,
    soft_cross_entropy,
    soft_target_loss,
    softmax_with_temperature,
    two_term_loss,
)
from .profiles import Profile, get_profile
from .student_init import IncompatibleModelsError, default_layer_map, init_student_from_teacher

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
