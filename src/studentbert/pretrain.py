"""Pretraining the teacher: masked language modelling + next-sentence prediction (Devlin et al., 2019).

The loss of one batch is

    L = CE(MLM logits at the masked positions, original tokens) + CE(NSP logits, IsNext/NotNext),

both averaged (the first over the masked tokens, the second over the pairs). The MLM logits are computed
only at the masked positions (``mlm_positions``): the other 85% of positions carry no loss, so their
``(H x V)`` projection would be wasted work.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F

from .bert import BertForPreTraining
from .data import IS_NEXT, MLMCollator, build_pretraining_examples, guess_topic, split_pair
from .hf import save_pretrained
from .profiles import Profile
from .training import Trainer


def pretraining_loss(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """MLM + NSP loss of a batch from :class:`~studentbert.data.MLMCollator`; also returns both terms."""
    positions = batch["labels"] != -100  # (B, L) masked tokens
    out = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"], mlm_positions=positions)
    mlm = F.cross_entropy(out.mlm_logits.float(), batch["labels"][positions])  # (M, V) vs (M,)
    nsp = F.cross_entropy(out.nsp_logits.float(), batch["next_sentence_label"])  # (B, 2) vs (B,)
    return mlm + nsp, {"mlm_loss": mlm.item(), "nsp_loss": nsp.item()}


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


def pretrain(profile: Profile, output_dir: str | Path, resume: bool | str = True, stop_after: int | None = None,
             allow_changes: Iterable[str] | None = None) -> Path:
    """Pretrain a teacher on ``profile``'s corpus; returns the Hugging Face directory of the result.

    Writes into ``output_dir``: ``checkpoint.pt`` (as it goes; a rerun resumes from it), ``metrics.jsonl``,
    ``results.json`` (final held-out metrics, baselines, time) and ``model/`` (``AutoModelForPreTraining``
    loads it; the tokenizer is saved beside the weights). ``resume`` and ``allow_changes`` are those of
    :meth:`studentbert.training.Trainer.train`: a resume with another data or model setting is refused.
    """
    from .pipeline import corpus, tokenizer_for

    output_dir = Path(output_dir)
    d = profile.data
    train_docs, heldout_docs = corpus(profile)
    tokenizer = tokenizer_for(profile)
    t0 = time.perf_counter()
    train = build_pretraining_examples(train_docs, tokenizer, max_length=d.max_length, seed=d.seed)
    heldout = build_pretraining_examples(heldout_docs, tokenizer, max_length=d.max_length, seed=d.seed + 1)
    config = profile.teacher.replace(vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    profile.teacher.check_sequence_length(d.max_length)
    torch.manual_seed(profile.pretrain.seed)
    model = BertForPreTraining(config)
    collate = MLMCollator(tokenizer, seed=profile.pretrain.seed)
    trainer = Trainer(model, pretraining_loss, train, collate, profile.pretrain, output_dir,
                      evaluate=lambda m: evaluate_pretraining(m, heldout, tokenizer),
                      description=f"pretraining ({profile.name})",
                      settings={"data": dataclasses.asdict(d), "model": config.to_dict()})
    final = trainer.train(resume=resume, stop_after=stop_after, allow_changes=allow_changes)
    if trainer.step < profile.pretrain.max_steps:
        return output_dir  # interrupted on purpose; a rerun resumes
    if trainer.is_main:
        results = {
            **{f"heldout_{k}": v for k, v in final.items()},
            "unigram_mlm_accuracy": unigram_baseline(train, heldout, tokenizer),
            "chance_nsp_accuracy": 0.5,
            "train_pairs": len(train), "heldout_pairs": len(heldout),
            "steps": trainer.step, "history": trainer.history, "seconds": time.perf_counter() - t0,
            "device": str(trainer.accelerator.device), "profile": profile.name,
        }
        save_pretrained(model, output_dir / "model", tokenizer)
        (output_dir / "results.json").write_text(json.dumps(results, indent=2))
    trainer.accelerator.wait_for_everyone()
    return output_dir / "model"
