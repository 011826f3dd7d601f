"""Measuring a model: masked-LM and NSP evaluation, classifier accuracy, and the baselines they are read against.

Every function evaluates in eval mode without gradients and puts the model back as it was. The masked-LM
evaluations mask with their own seeded generator, so every model (teacher, student, any step) sees the same
masks; at those masks :func:`teacher_student_agreement` measures how closely a student follows its teacher.
The baselines say what a score is worth: the most frequent token for MLM (:func:`unigram_baseline`),
a topic rule for NSP (:func:`topic_rule_baseline`), the majority class for a classifier
(:func:`majority_baseline`; the bag of words is the sentiment task's own, :func:`~studentbert.data.sentiment.bag_of_words_baseline`).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F

from .bert import BertForPreTraining
from .data import IS_NEXT, MLMCollator, guess_topic, split_pair
from .data.sentiment import as_task_dataset
from .hf import check_model_dir, load_classifier, load_tokenizer

# ----------------------------------------------------------------------------------------------------------
# masked LM and next-sentence prediction


@torch.no_grad()
def evaluate_mlm(model, examples, tokenizer, batch_size: int = 64, seed: int = 1234,
                 segments: bool = False) -> dict[str, float]:
    """Masked-token loss and accuracy on held-out examples, with fixed masks (teacher or student).

    The masking uses its own seeded generator, so every evaluation of every model sees the same masks.
    With ``segments`` (sentence pairs, a model with token types and an NSP head) it also measures NSP accuracy.
    """
    collate = MLMCollator(tokenizer, seed=seed, return_token_type_ids=segments)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    n_tok = n_correct = n_pairs = nsp_correct = 0
    loss_sum = 0.0
    for s in range(0, len(examples), batch_size):
        batch = collate([examples[i] for i in range(s, min(s + batch_size, len(examples)))])
        batch = {k: v.to(device) for k, v in batch.items()}
        positions = batch["labels"] != -100
        token_types = (batch["token_type_ids"],) if segments else ()
        out = model(batch["input_ids"], batch["attention_mask"], *token_types, mlm_positions=positions)
        logits, target = out.mlm_logits.float(), batch["labels"][positions]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        n_correct += (logits.argmax(-1) == target).sum().item()
        n_tok += target.numel()
        if segments:
            nsp_correct += (out.nsp_logits.argmax(-1) == batch["next_sentence_label"]).sum().item()
            n_pairs += batch["next_sentence_label"].numel()
    model.train(was_training)
    metrics = {"mlm_loss": loss_sum / n_tok, "mlm_accuracy": n_correct / n_tok}
    if segments:
        metrics["nsp_accuracy"] = nsp_correct / n_pairs
    return metrics


@torch.no_grad()
def teacher_student_agreement(teacher, student, examples, tokenizer, batch_size: int = 64,
                              seed: int = 1234) -> dict[str, float]:
    """How closely the student's masked-LM predictions follow the teacher's, on held-out single segments.

    The positions are masked exactly as :func:`evaluate_mlm` masks them (same collator, same ``seed``), and both
    models read the same masked batch, without token types. At the ``M`` masked positions of a batch the teacher's
    and the student's MLM logits, each ``(M, V)``, give distributions ``p_t`` and ``p_s`` at temperature 1.

    Returns:
        ``kl``: the mean over all masked positions of ``KL(p_t || p_s) = sum_v p_t(v) (log p_t(v) - log p_s(v))``,
        in nats (0 when the student predicts exactly what the teacher does); ``top1_agreement``: the fraction of
        masked positions where the two arg-max tokens are the same.
    """
    collate = MLMCollator(tokenizer, seed=seed, return_token_type_ids=False)
    models = (teacher, student)
    was_training = [m.training for m in models]
    for m in models:
        m.eval()
    n_tok = n_agree = 0
    kl_sum = 0.0
    for s in range(0, len(examples), batch_size):
        batch = collate([examples[i] for i in range(s, min(s + batch_size, len(examples)))])
        positions = batch["labels"] != -100  # (B, L)
        log_p = []
        for m in models:
            device = next(m.parameters()).device
            out = m(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                    mlm_positions=positions.to(device))
            log_p.append(F.log_softmax(out.mlm_logits.float(), dim=-1).cpu())  # (M, V)
        log_t, log_s = log_p
        kl_sum += (log_t.exp() * (log_t - log_s)).sum().item()
        n_agree += (log_t.argmax(-1) == log_s.argmax(-1)).sum().item()
        n_tok += log_t.shape[0]
    for m, mode in zip(models, was_training, strict=True):
        m.train(mode)
    return {"kl": kl_sum / n_tok, "top1_agreement": n_agree / n_tok}


def evaluate_pretraining(model: BertForPreTraining, examples, tokenizer, batch_size: int = 64,
                         seed: int = 1234) -> dict[str, float]:
    """MLM loss and accuracy (at masked positions) and NSP accuracy on held-out sentence pairs."""
    return evaluate_mlm(model, examples, tokenizer, batch_size, seed, segments=True)


def unigram_baseline(train_examples, heldout_examples, tokenizer, seed: int = 1234) -> float:
    """MLM accuracy of always guessing the most frequent (non-special) training token, at the same masks."""
    special = set(tokenizer.all_special_ids)
    counts = Counter(t for ex in train_examples for t in ex["input_ids"] if t not in special)
    most_common = counts.most_common(1)[0][0]
    collate = MLMCollator(tokenizer, seed=seed)
    hits = total = 0
    for s in range(0, len(heldout_examples), 64):
        batch = collate([heldout_examples[i] for i in range(s, min(s + 64, len(heldout_examples)))])
        target = batch["labels"][batch["labels"] != -100]
        hits += (target == most_common).sum().item()
        total += target.numel()
    return hits / total


def topic_rule_baseline(heldout_examples, tokenizer) -> float:
    """NSP accuracy of a rule that reads only the words: IsNext when :func:`~studentbert.data.guess_topic` gives
    segments A and B the same topic. Meaningful on the generated corpus (its topics), not on real text."""
    hits = 0
    for ex in heldout_examples:
        a, b = (tokenizer.decode(ids) for ids in split_pair(ex["input_ids"], ex["token_type_ids"]))
        same_topic = guess_topic(a) is not None and guess_topic(a) == guess_topic(b)
        hits += same_topic == (ex["next_sentence_label"] == IS_NEXT)
    return hits / len(heldout_examples)


# ----------------------------------------------------------------------------------------------------------
# classifiers


def model_inputs(model, batch) -> dict[str, torch.Tensor]:
    """The inputs a ``transformers`` classifier takes from ``batch``: ``input_ids``, ``attention_mask``, and for a
    BERT (which has segment embeddings; DistilBERT has none) the ``token_type_ids`` of sentence pairs."""
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    config = getattr(model, "module", model).config  # under DDP the model is wrapped
    if "token_type_ids" in batch and getattr(config, "type_vocab_size", 0) > 1:
        inputs["token_type_ids"] = batch["token_type_ids"]
    return inputs


@torch.no_grad()
def evaluate_classifier(
    model_dir_or_model: str | Path | torch.nn.Module,
    test,
    tokenizer=None,
    max_length: int = 128,
    batch_size: int = 64,
) -> float:
    """Accuracy of a sentence classifier on ``test`` (a plain loop: no Trainer, no sampler, no padding tricks).

    Args:
        model_dir_or_model: a ``transformers`` sequence classifier, or a directory that
            ``AutoModelForSequenceClassification`` loads.
        test: ``datasets.Dataset`` with ``text`` and ``label`` (and ``text_pair`` for a sentence-pair task),
            or a list of ``(text, label)``.
        tokenizer: the model's tokenizer; may be None when a directory holding one is given.
        max_length: truncation length, as in training.
        batch_size: examples per forward pass.

    Returns:
        The fraction of examples whose arg-max logit is the label.
    """
    if isinstance(model_dir_or_model, (str, Path)):
        config = check_model_dir(model_dir_or_model, "model")
        if not any(a.endswith("ForSequenceClassification") for a in config.architectures or []):
            raise ValueError(
                f"{model_dir_or_model} holds a {(config.architectures or ['model'])[0]}, not a fine-tuned "
                f"classifier: its classification head would be random. Fine-tune it first (finetune).")
        model = load_classifier(model_dir_or_model, "model", num_labels=None)
        if tokenizer is None:
            tokenizer = load_tokenizer(model_dir_or_model, "model", config)
    else:
        model = model_dir_or_model
    if tokenizer is None:
        raise ValueError("evaluate_classifier needs the tokenizer when it is given a model object.")
    test = as_task_dataset(test, "test", num_labels=model.config.num_labels)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    texts, labels = test["text"], test["label"]
    pairs = test["text_pair"] if "text_pair" in test.column_names else None
    correct = 0
    for s in range(0, len(texts), batch_size):
        second = (pairs[s:s + batch_size],) if pairs is not None else ()
        batch = tokenizer(texts[s:s + batch_size], *second, padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt")
        logits = model(**model_inputs(model, batch.to(device))).logits  # (b, num_labels)
        target = torch.tensor(labels[s:s + batch_size], device=device)
        correct += (logits.argmax(-1) == target).sum().item()
    model.train(was_training)
    return correct / len(texts)


def majority_baseline(labels) -> float:
    """Accuracy of always answering the most frequent label of ``labels``."""
    labels = list(labels)
    if not labels:
        raise ValueError("majority_baseline needs at least one label.")
    return Counter(labels).most_common(1)[0][1] / len(labels)
