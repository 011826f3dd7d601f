"""Conversion to and from Hugging Face ``transformers``: configs, parameter names, models.

Our modules use short names and one fused Q/K/V projection; ``transformers`` keeps
separate query/key/value matrices under longer names. :func:`weight_map` lists,
for every one of our parameters, the Hugging Face parameter(s) it corresponds to
(three of them, concatenated along the output axis, for ``qkv``). Converting is
then a rename plus a split or a concatenation, and tests check that both
directions give the same logits.

    >>> from transformers import AutoModelForPreTraining
    >>> ours = from_transformers(AutoModelForPreTraining.from_pretrained(path))
    >>> to_transformers(ours).save_pretrained("out/teacher")   # what studentbert.hf.save_pretrained does
"""

from __future__ import annotations

import torch
import transformers
from torch import nn

from .bert import BertForMaskedLM, BertForPreTraining, BertForSequenceClassification, BertModel
from .config import BertConfig, DistilBertConfig, EncoderConfig
from .distilbert import DistilBertForMaskedLM, DistilBertForSequenceClassification, DistilBertModel


class CheckpointMismatchError(ValueError):
    """A checkpoint whose parameters do not fit the model it is loaded into."""


# ----------------------------------------------------------------------------------------------------------
# configs

def config_to_hf(config: EncoderConfig, **extra) -> transformers.PretrainedConfig:
    """Our config -> ``transformers.BertConfig`` or ``transformers.DistilBertConfig``."""
    if isinstance(config, BertConfig):
        return transformers.BertConfig(
            vocab_size=config.vocab_size, hidden_size=config.hidden_size,
            num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
            intermediate_size=config.intermediate_size, hidden_act=config.hidden_act,
            hidden_dropout_prob=config.hidden_dropout, attention_probs_dropout_prob=config.attention_dropout,
            max_position_embeddings=config.max_position_embeddings, type_vocab_size=config.type_vocab_size,
            initializer_range=config.initializer_range, layer_norm_eps=config.layer_norm_eps,
            pad_token_id=config.pad_token_id, **extra,
        )
    if isinstance(config, DistilBertConfig):
        if config.layer_norm_eps != 1e-12:
            raise ValueError(
                f"transformers' DistilBERT hard-codes LayerNorm eps=1e-12; this config has "
                f"{config.layer_norm_eps}, so the exported model would compute something else."
            )
        return transformers.DistilBertConfig(
            vocab_size=config.vocab_size, dim=config.hidden_size, n_layers=config.num_layers,
            n_heads=config.num_heads, hidden_dim=config.intermediate_size, activation=config.hidden_act,
            dropout=config.hidden_dropout, attention_dropout=config.attention_dropout,
            max_position_embeddings=config.max_position_embeddings, initializer_range=config.initializer_range,
            pad_token_id=config.pad_token_id, sinusoidal_pos_embds=False, **extra,
        )
    raise TypeError(f"Expected a BertConfig or DistilBertConfig, got {type(config).__name__}.")


def config_from_hf(hf: transformers.PretrainedConfig) -> BertConfig | DistilBertConfig:
    """``transformers`` BERT/DistilBERT config -> ours. Anything else raises a clear error."""
    if hf.model_type == "bert":
        if getattr(hf, "position_embedding_type", "absolute") != "absolute":
            raise ValueError(
                f"This BERT uses position_embedding_type={hf.position_embedding_type!r}; studentbert models "
                f"BERT's learned absolute positions only.")
        return BertConfig(
            vocab_size=hf.vocab_size, hidden_size=hf.hidden_size, num_layers=hf.num_hidden_layers,
            num_heads=hf.num_attention_heads, intermediate_size=hf.intermediate_size, hidden_act=hf.hidden_act,
            hidden_dropout=hf.hidden_dropout_prob, attention_dropout=hf.attention_probs_dropout_prob,
            max_position_embeddings=hf.max_position_embeddings, type_vocab_size=hf.type_vocab_size,
            initializer_range=hf.initializer_range, layer_norm_eps=hf.layer_norm_eps,
            pad_token_id=hf.pad_token_id if hf.pad_token_id is not None else 0,
        )
    if hf.model_type == "distilbert":
        if getattr(hf, "sinusoidal_pos_embds", False):
            raise ValueError("This DistilBERT uses sinusoidal position embeddings, which studentbert does not model.")
        return DistilBertConfig(
            vocab_size=hf.vocab_size, hidden_size=hf.dim, num_layers=hf.n_layers, num_heads=hf.n_heads,
            intermediate_size=hf.hidden_dim, hidden_act=hf.activation, hidden_dropout=hf.dropout,
            attention_dropout=hf.attention_dropout, max_position_embeddings=hf.max_position_embeddings,
            initializer_range=hf.initializer_range, pad_token_id=hf.pad_token_id if hf.pad_token_id is not None else 0,
        )
    raise ValueError(
        f"Expected a BERT or DistilBERT checkpoint (model_type 'bert' or 'distilbert'), got model_type "
        f"{hf.model_type!r}. studentbert distils BERT-architecture teachers only."
    )


# ----------------------------------------------------------------------------------------------------------
# parameter names

_LAYER_NAMES = {
    "bert": {
        "stack": "encoder.layer",
        "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
        "attention.out": "attention.output.dense", "attention_norm": "attention.output.LayerNorm",
        "ffn_up": "intermediate.dense", "ffn_down": "output.dense", "ffn_norm": "output.LayerNorm",
        "embeddings": "embeddings", "word": "word_embeddings", "position": "position_embeddings",
        "token_type": "token_type_embeddings", "norm": "LayerNorm",
    },
    "distilbert": {
        "stack": "transformer.layer",
        "q": "attention.q_lin", "k": "attention.k_lin", "v": "attention.v_lin",
        "attention.out": "attention.out_lin", "attention_norm": "sa_layer_norm",
        "ffn_up": "ffn.lin1", "ffn_down": "ffn.lin2", "ffn_norm": "output_layer_norm",
        "embeddings": "embeddings", "word": "word_embeddings", "position": "position_embeddings",
        "norm": "LayerNorm",
    },
}


def _encoder_map(ours: str, hf: str, kind: str, num_layers: int, token_type: bool) -> list[tuple[str, tuple[str, ...]]]:
    n = _LAYER_NAMES[kind]
    sep = "." if hf else ""
    e_ours, e_hf = f"{ours}encoder.embeddings", f"{hf}{sep}{n['embeddings']}"
    pairs = [
        (f"{e_ours}.word.weight", (f"{e_hf}.{n['word']}.weight",)),
        (f"{e_ours}.position.weight", (f"{e_hf}.{n['position']}.weight",)),
    ]
    if token_type:
        pairs.append((f"{e_ours}.token_type.weight", (f"{e_hf}.{n['token_type']}.weight",)))
    pairs += [(f"{e_ours}.norm.{p}", (f"{e_hf}.{n['norm']}.{p}",)) for p in ("weight", "bias")]
    for i in range(num_layers):
        lo, lh = f"{ours}encoder.layers.{i}", f"{hf}{sep}{n['stack']}.{i}"
        for p in ("weight", "bias"):
            pairs.append((f"{lo}.attention.qkv.{p}", tuple(f"{lh}.{n[x]}.{p}" for x in "qkv")))
            for name in ("attention.out", "attention_norm", "ffn_up", "ffn_down", "ffn_norm"):
                pairs.append((f"{lo}.{name}.{p}", (f"{lh}.{n[name]}.{p}",)))
    return pairs


def _linear(ours: str, hf: str) -> list[tuple[str, tuple[str, ...]]]:
    return [(f"{ours}.{p}", (f"{hf}.{p}",)) for p in ("weight", "bias")]


def weight_map(model: nn.Module) -> list[tuple[str, tuple[str, ...]]]:
    """``(our parameter, its Hugging Face parameter(s))`` for every parameter of ``model``.

    Tied matrices appear under each of their names on both sides, so a state dict converted with this map
    is complete for ``load_state_dict(strict=True)``.
    """
    c = model.config
    if isinstance(model, BertModel):
        return _encoder_map("", "", "bert", c.num_layers, True) + _linear("pooler", "pooler.dense")
    if isinstance(model, BertForPreTraining | BertForMaskedLM | BertForSequenceClassification):
        pairs = _encoder_map("bert.", "bert", "bert", c.num_layers, True)
        if not isinstance(model, BertForMaskedLM) or model.next_sentence:  # BertForMaskedLM alone has no pooler
            pairs += _linear("bert.pooler", "bert.pooler.dense")
        word = "bert.encoder.embeddings.word.weight"
        if isinstance(model, BertForSequenceClassification):
            return pairs + _linear("classifier", "classifier")
        mlm = _linear("mlm.dense", "cls.predictions.transform.dense") + [
            ("mlm.norm.weight", ("cls.predictions.transform.LayerNorm.weight",)),
            ("mlm.norm.bias", ("cls.predictions.transform.LayerNorm.bias",)),
            ("mlm.decoder.weight", ("cls.predictions.decoder.weight",)),
            (word, ("cls.predictions.decoder.weight",)),
            ("mlm.decoder.bias", ("cls.predictions.bias",)),
            ("mlm.decoder.bias", ("cls.predictions.decoder.bias",)),
        ]
        return pairs + mlm + (_linear("nsp", "cls.seq_relationship") if model.next_sentence else [])
    if isinstance(model, DistilBertModel):
        return _encoder_map("", "", "distilbert", c.num_layers, False)
    if isinstance(model, DistilBertForMaskedLM | DistilBertForSequenceClassification):
        pairs = _encoder_map("distilbert.", "distilbert", "distilbert", c.num_layers, False)
        if isinstance(model, DistilBertForSequenceClassification):
            return pairs + _linear("pre_classifier", "pre_classifier") + _linear("classifier", "classifier")
        return pairs + _linear("mlm.dense", "vocab_transform") + [
            ("mlm.norm.weight", ("vocab_layer_norm.weight",)),
            ("mlm.norm.bias", ("vocab_layer_norm.bias",)),
            ("mlm.decoder.weight", ("vocab_projector.weight",)),
            ("mlm.decoder.bias", ("vocab_projector.bias",)),
        ]
    raise TypeError(f"No Hugging Face counterpart for {type(model).__name__}.")


# ----------------------------------------------------------------------------------------------------------
# models

HF_CLASSES = {
    BertModel: transformers.BertModel,
    BertForPreTraining: transformers.BertForPreTraining,
    BertForMaskedLM: transformers.BertForMaskedLM,
    BertForSequenceClassification: transformers.BertForSequenceClassification,
    DistilBertModel: transformers.DistilBertModel,
    DistilBertForMaskedLM: transformers.DistilBertForMaskedLM,
    DistilBertForSequenceClassification: transformers.DistilBertForSequenceClassification,
}
OUR_CLASSES = {v.__name__: k for k, v in HF_CLASSES.items()}


def _check_keys(expected: set[str], got: set[str], what: str) -> None:
    missing, unexpected = sorted(expected - got), sorted(got - expected)
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"The checkpoint does not match the {what}: missing {missing[:6]}{' ...' if len(missing) > 6 else ''}"
            f" ({len(missing)} in all), unexpected {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''} "
            f"({len(unexpected)} in all). Check that the checkpoint's class and config are the ones this "
            f"model was built from (number of layers, with or without heads)."
        )


def to_transformers(model: nn.Module) -> nn.Module:
    """Our model -> the equivalent ``transformers`` model, same weights, in eval mode."""
    extra = {"num_labels": model.num_labels} if hasattr(model, "num_labels") else {}
    hf_model = HF_CLASSES[type(model)](config_to_hf(model.config, **extra))
    ours = model.state_dict()
    hf_state = {}
    for our_key, hf_keys in weight_map(model):
        for hf_key, part in zip(hf_keys, ours[our_key].chunk(len(hf_keys), dim=0), strict=True):
            hf_state[hf_key] = part.detach().clone()
    expected = {k for k in hf_model.state_dict() if not k.endswith("position_ids")}
    _check_keys(expected, set(hf_state), f"transformers {type(hf_model).__name__}")
    hf_model.load_state_dict(hf_state, strict=False)
    return hf_model.eval()


def from_transformers(hf_model: nn.Module) -> nn.Module:
    """A ``transformers`` BERT or DistilBERT model -> ours, same weights, in eval mode.

    Supported: ``BertModel``, ``BertForPreTraining``, ``BertForMaskedLM``, ``BertForSequenceClassification``,
    ``DistilBertModel``,
    ``DistilBertForMaskedLM``, ``DistilBertForSequenceClassification``.
    """
    name = type(hf_model).__name__
    if name not in OUR_CLASSES:
        raise TypeError(f"Cannot convert transformers {name}; supported: {sorted(OUR_CLASSES)}.")
    cls = OUR_CLASSES[name]
    config = config_from_hf(hf_model.config)
    if cls is BertModel:
        model = BertModel(config, add_pooler=getattr(hf_model, "pooler", None) is not None)
    elif cls in (BertForSequenceClassification, DistilBertForSequenceClassification):
        model = cls(config, num_labels=hf_model.config.num_labels)
    else:
        model = cls(config)
    hf_state = hf_model.state_dict()
    pairs = [(o, h) for o, h in weight_map(model) if o in model.state_dict()]
    hf_needed = {k for _, hs in pairs for k in hs}
    hf_present = {k for k in hf_state if not k.endswith("position_ids")}
    _check_keys(hf_needed, hf_present, f"studentbert {cls.__name__}")
    state = {o: torch.cat([hf_state[h] for h in hs], dim=0) for o, hs in pairs}
    model.load_state_dict(state, strict=True)
    return model.eval()
