"""The two sizes of every run: ``tiny`` (a 2-core CPU, minutes, offline) and ``full`` (one GPU).

One code path serves both: a chapter or a command takes a profile name, and
everything that differs between the sizes lives here.

Two switches adapt a profile without a second code path:

* ``smoke=True`` (``full`` only) keeps every shape of the full profile (BERT-base teacher, 6-layer student,
  the bert-base-uncased vocabulary, 128 tokens) and cuts the work to a handful of steps on small data: the
  whole full-size book then runs on a CPU in minutes (CI runs it), through the very functions a GPU runs.
* ``overrides`` replaces settings by name, with dotted names for the nested ones:
  ``{"teacher_checkpoint": "/data/bert-base-uncased", "data.corpus": "/data/wikitext",
  "task.name": "/data/sst2", "distill.max_steps": 5000}``. Readers with local copies of the hub's models
  and datasets use it exactly as the smoke run uses its local stand-ins (:mod:`studentbert.standins`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

from .config import BertConfig
from .optim import TrainConfig


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
    """The downstream sentence-classification task.

    ``name``: ``"generated-sentiment"`` (offline), ``"sst2"`` (GLUE SST-2 from the hub), or a local directory
    holding SST-2 in GLUE's schema (``sentence``, ``label``, ``idx``; ``train`` and ``validation`` files in
    parquet, CSV or JSON Lines). ``negated_frames``: the generated task's share of reviews inside a frame that
    denies them (``Anna did not think that the soup was good.``), which makes the task harder
    (:func:`studentbert.data.sentiment.generate_sentiment`).
    """

    name: str = "generated-sentiment"
    num_train: int = 2000
    num_test: int = 1000
    max_length: int = 48
    negated_frames: float = 0.0


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
    student_checkpoint: str | None = None  # a released student that chapter 8 uses (full: distilbert-base-uncased)
    tagging: str = "generated"  # chapter 8's entity task: "generated", "conll2003" (hub) or a local directory
    smoke: bool = False  # the full shapes with a handful of steps and small data (see the module docstring)

    def key(self, *parts: str) -> str:
        """A short hash of the settings that determine an artifact: same settings, same cache entry."""
        selected = {p: _as_dict(getattr(self, p)) for p in parts}
        return hashlib.sha1(json.dumps(selected, sort_keys=True).encode()).hexdigest()[:10]

    def replace(self, **changes) -> Profile:
        return dataclasses.replace(self, **changes)


def _as_dict(x):
    return dataclasses.asdict(x) if dataclasses.is_dataclass(x) else x


def get_profile(name: str, smoke: bool = False, overrides: dict | None = None) -> Profile:
    """The settings of profile ``name`` (``"tiny"`` or ``"full"``), freshly built so callers may change them.

    ``smoke`` shrinks the full profile's work, not its shapes (:func:`smoke_profile`); ``overrides`` replaces
    settings by (dotted) name (:func:`apply_overrides`).
    """
    profile = _base_profile(name)
    if smoke:
        profile = smoke_profile(profile)
    return apply_overrides(profile, overrides or {})


def smoke_profile(profile: Profile) -> Profile:
    """The full profile at smoke scale: every shape kept, 3 steps a run, a few hundred documents and examples.

    Chapters that assert what only real scale can show check ``settings.smoke`` and say that they skip it.
    """
    if profile.name != "full":
        raise ValueError(f"smoke=True shrinks the 'full' profile; {profile.name!r} is already small.")

    def few(config: TrainConfig) -> TrainConfig:
        return dataclasses.replace(config, max_steps=3, batch_size=4, eval_every=0, save_every=3, log_every=1)

    return profile.replace(
        data=dataclasses.replace(profile.data, num_documents=200, heldout_documents=24),
        pretrain=few(profile.pretrain), distill=few(profile.distill), finetune=few(profile.finetune),
        task=dataclasses.replace(profile.task, num_train=64, num_test=32), smoke=True,
    )


def apply_overrides(profile: Profile, overrides: dict) -> Profile:
    """``profile`` with the settings in ``overrides`` replaced: ``{"teacher_checkpoint": ..., "data.corpus": ...}``.

    An unknown name is refused with the list of valid ones, so a typo cannot be silently ignored.
    """
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        fields = {f.name for f in dataclasses.fields(Profile)}
        if head not in fields or head == "name":
            raise ValueError(f"Unknown setting {key!r} in overrides; valid names: {sorted(fields - {'name'})}, "
                             f"and dotted names such as 'data.corpus' or 'distill.max_steps'.")
        if not rest:
            profile = profile.replace(**{head: value})
            continue
        section = getattr(profile, head)
        if not dataclasses.is_dataclass(section) or "." in rest or rest not in {f.name for f in dataclasses.fields(section)}:
            valid = sorted(f.name for f in dataclasses.fields(section)) if dataclasses.is_dataclass(section) else []
            raise ValueError(f"Unknown setting {key!r} in overrides; {head!r} has {valid}.")
        profile = profile.replace(**{head: dataclasses.replace(section, **{rest: value})})
    return profile


def _base_profile(name: str) -> Profile:
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
            finetune=TrainConfig(max_steps=1000, batch_size=32, learning_rate=5e-4, warmup_ratio=0.1,
                                 eval_every=0, save_every=500, log_every=20, weight_decay=0.01),
            # 650 labelled reviews, 15% of them in a denying frame: the fine-tuned tiny teacher lands between 0.80
            # and 0.92 (0.807-0.881 over four fine-tuning runs), far below the rule's 1.0 and far above a bag of
            # words; with 1,000 reviews it solves the task again (0.975-0.997). Chapter 7 and
            # benchmarks/bench_task_seeds.py measure it.
            task=TaskSettings(num_train=650, negated_frames=0.15),
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
            student_checkpoint="distilbert/distilbert-base-uncased",
            tagging="conll2003",
        )
    raise ValueError(f"Unknown profile {name!r}: use 'tiny' (CPU, minutes, offline) or 'full' (one GPU).")
