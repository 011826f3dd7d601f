"""The two sizes of every run: ``tiny`` (a 2-core CPU, minutes, offline) and ``full`` (one GPU).

One code path serves both: a chapter or a command takes a profile name, and
everything that differs between the sizes lives here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .config import BertConfig
from .training import TrainConfig


@dataclass
class DataSettings:
    """Where the text comes from and how it is cut.

    ``corpus="generated"`` uses the package's own corpus (:mod:`studentbert.data.corpus`); anything else is a
    local path or a dataset id for :func:`studentbert.data.load_documents`. ``tokenizer=None`` trains a
    WordPiece vocabulary of ``vocab_size`` on the corpus; a name or directory loads a pretrained one.
    """

    corpus: str = "generated"
    corpus_config: str | None = None
    num_documents: int = 4000
    heldout_documents: int = 300
    tokenizer: str | None = None
    vocab_size: int = 2048
    max_length: int = 64
    seed: int = 0


@dataclass
class TaskSettings:
    """The downstream sentence-classification task (generated sentiment, or a GLUE task when online)."""

    name: str = "generated-sentiment"
    num_train: int = 2000
    num_test: int = 1000
    max_length: int = 48


@dataclass
class Profile:
    name: str
    data: DataSettings
    teacher: BertConfig
    student_layers: int
    pretrain: TrainConfig
    distill: TrainConfig
    finetune: TrainConfig
    task: TaskSettings = field(default_factory=TaskSettings)
    teacher_checkpoint: str | None = None  # a hub id or directory to use instead of our pretrained teacher

    def key(self, *parts: str) -> str:
        """A short hash of the settings that determine an artifact: same settings, same cache entry."""
        selected = {p: _plain(getattr(self, p)) for p in parts}
        return hashlib.sha1(json.dumps(selected, sort_keys=True).encode()).hexdigest()[:10]

    def replace(self, **changes) -> Profile:
        return dataclasses.replace(self, **changes)


def _plain(x):
    return dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x


def get_profile(name: str) -> Profile:
    """The settings of profile ``name`` (``"tiny"`` or ``"full"``), freshly built so callers may change them."""
    if name == "tiny":
        teacher = BertConfig(vocab_size=2048, hidden_size=128, num_layers=4, num_heads=4, intermediate_size=512,
                             max_position_embeddings=128)
        return Profile(
            name="tiny",
            data=DataSettings(),
            teacher=teacher,
            student_layers=2,
            pretrain=TrainConfig(max_steps=1200, batch_size=32, learning_rate=1e-3, warmup_ratio=0.05,
                                 eval_every=300, save_every=300, log_every=20),
            distill=TrainConfig(max_steps=600, batch_size=32, learning_rate=1e-3, warmup_ratio=0.05,
                                eval_every=200, save_every=200, log_every=20),
            # 1000 steps on 500 labelled sentences: every model leaves the log-2 plateau, and the gap between a
            # distilled student and one without a teacher is larger than the seed-to-seed noise (chapter 7).
            finetune=TrainConfig(max_steps=1000, batch_size=32, learning_rate=5e-4, warmup_ratio=0.1,
                                 eval_every=0, save_every=500, log_every=20, weight_decay=0.01),
            task=TaskSettings(num_train=500),
        )
    if name == "full":
        return Profile(
            name="full",
            data=DataSettings(corpus="wikitext", corpus_config="wikitext-103-raw-v1", num_documents=0,
                              heldout_documents=500, tokenizer="bert-base-uncased", vocab_size=30522,
                              max_length=128),
            teacher=BertConfig(),  # BERT-base: 12 layers, 768 hidden, 12 heads, 110M parameters
            student_layers=6,
            pretrain=TrainConfig(max_steps=20_000, batch_size=256, learning_rate=5e-4, warmup_ratio=0.05,
                                 eval_every=2000, save_every=1000, log_every=50),
            distill=TrainConfig(max_steps=20_000, batch_size=256, learning_rate=5e-4, warmup_ratio=0.05,
                                eval_every=2000, save_every=1000, log_every=50),
            finetune=TrainConfig(max_steps=2000, batch_size=32, learning_rate=3e-5, warmup_ratio=0.1,
                                 eval_every=0, save_every=1000, log_every=50),
            task=TaskSettings(name="sst2", num_train=0, num_test=0, max_length=128),
            teacher_checkpoint="bert-base-uncased",
        )
    raise ValueError(f"Unknown profile {name!r}: use 'tiny' (CPU, minutes, offline) or 'full' (one GPU).")
