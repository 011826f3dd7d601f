"""The chapters' cache: the corpus, the tokenizer, the teacher and the student, each made once and shared.

Every chapter runs on its own (papermill runs each alone), yet the book in order should do the work
once. So each artifact lives in a cache directory named by the profile and a hash of the settings it
depends on: a chapter asks for it, gets it at once if an earlier chapter made it with the same settings,
and makes it otherwise. The cache root is ``$STUDENTBERT_HOME`` (default ``~/.cache/studentbert``).

This is the only module that knows about the cache. It gives the stages (:mod:`.pretrain`, :mod:`.distill`)
their inputs: the profile's documents and tokenizer. The cache key ends with a fingerprint of the package's
code: every module but those in :data:`NOT_IN_FINGERPRINT` (which no artifact depends on; a test checks that
this module does not import them).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from .checkpoint import RESULTS
from .data import check_tokenizer, load_tokenizer, profile_corpus, train_wordpiece
from .distill import distill
from .gpus import fit_to_gpu
from .hf import model_directory
from .pretrain import pretrain
from .profiles import Profile, get_profile


def home() -> Path:
    return Path(os.environ.get("STUDENTBERT_HOME", Path.home() / ".cache" / "studentbert"))


#: Modules whose code cannot change an artifact (the corpus, tokenizer, teacher or student): editing them keeps
#: the cache. Every other module of the package is hashed into the fingerprint.
NOT_IN_FINGERPRINT = frozenset({
    "__init__.py", "__main__.py", "cli.py", "cli_tasks.py", "experiments.py", "export.py", "finetune.py",
    "config_file.py", "hf_trainer.py", "report.py", "report_card.py", "source.py", "speed.py", "standins.py",
})


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the source of every module of the package except :data:`NOT_IN_FINGERPRINT`: an artifact
    made by other code (another corpus grammar, another loss) is not silently reused."""
    root = Path(__file__).parent
    digest = hashlib.sha1()
    for path in sorted(root.rglob("*.py")):
        name = path.relative_to(root).as_posix()
        if name not in NOT_IN_FINGERPRINT:
            digest.update(name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def artifact_dir(profile: Profile, kind: str, *parts: str) -> Path:
    """``$STUDENTBERT_HOME/<profile>/<kind>-<hash of the settings named in parts>-<code fingerprint>``."""
    return home() / profile.name / f"{kind}-{profile.key(*parts)}-{code_fingerprint()}"


def _profile(profile: Profile | str) -> Profile:
    return get_profile(profile) if isinstance(profile, str) else profile


def _fitted(profile: Profile) -> Profile:
    """The profile's training runs with the precision and gradient accumulation that fit the GPU at hand
    (:func:`studentbert.gpus.fit_to_gpu`; the global batch is unchanged). On a CPU, unchanged."""
    return fit_to_gpu(profile) if profile.name == "full" else profile


def corpus(profile: Profile | str) -> tuple[list[list[str]], list[list[str]]]:
    """``(train documents, held-out documents)`` of the profile (a name or a :class:`Profile`); each document is
    a list of sentences (:func:`studentbert.data.profile_corpus`)."""
    return profile_corpus(_profile(profile))


def tokenizer_for(profile: Profile | str):
    """The profile's tokenizer: trained on the corpus once (WordPiece), or a pretrained one by name."""
    p = _profile(profile)
    if p.data.tokenizer is not None:
        tok = load_tokenizer(p.data.tokenizer)
    else:
        path = artifact_dir(p, "tokenizer", "data")
        if (path / "tokenizer.json").is_file():
            tok = load_tokenizer(str(path))
        else:
            train_docs, _ = corpus(p)
            tok = train_wordpiece((s for doc in train_docs for s in doc), vocab_size=p.data.vocab_size,
                                  output_dir=path)
    check_tokenizer(tok)
    return tok


def pretrained_teacher(profile: Profile | str) -> Path:
    """Directory of the profile's pretrained teacher (``AutoModelForPreTraining`` format), pretraining it if needed.

    The run directory (checkpoints, ``metrics.jsonl``, ``results.json``) is the parent of the returned path.
    """
    p = _fitted(_profile(profile))
    run = artifact_dir(p, "teacher", "data", "teacher", "pretrain")
    if (run / "model" / "config.json").is_file() and (run / RESULTS).is_file():
        return run / "model"
    documents, heldout = corpus(p)
    return pretrain(p, run, documents=documents, heldout=heldout, tokenizer=tokenizer_for(p))


def distilled_student(profile: Profile | str) -> Path:
    """Directory of the profile's distilled student (``AutoModelForMaskedLM`` format), distilling it if needed.

    The teacher is :func:`pretrained_teacher` (or the profile's ``teacher_checkpoint`` when it names one);
    the loss is DistilBERT's triple loss with its default weights. The run directory is the returned path's parent.
    """
    p = _fitted(_profile(profile))
    teacher = p.teacher_checkpoint or pretrained_teacher(p)
    run = artifact_dir(p, "student", "data", "teacher", "pretrain", "student_layers", "distill")
    if (run / "model" / "config.json").is_file() and (run / RESULTS).is_file():
        return run / "model"
    documents, heldout = corpus(p)
    return distill(p, teacher, run, documents=documents, heldout=heldout)


#: The settings that the task runs depend on: chapter 7's comparison and ablation, which chapter 11 and
#: ``benchmarks/bench_deploy.py`` reuse.
TASK_PARTS = ("data", "teacher", "pretrain", "student_layers", "distill", "finetune", "task", "teacher_checkpoint")


def task_runs_dir(profile: Profile | str, kind: str = "compare") -> Path:
    """Where the profile's task runs of ``kind`` live: ``"compare"`` (:func:`studentbert.experiments.compare`,
    whose fine-tuned teacher and task-distilled student chapter 11 deploys) or ``"ablation"``."""
    return artifact_dir(_profile(profile), kind, *TASK_PARTS)


def teacher_source(profile: Profile | str) -> Path:
    """The teacher the task runs start from: the profile's ``teacher_checkpoint`` (a hub id, of which only the
    config, the safetensors weights and the tokenizer are downloaded, or a local directory) or, without one,
    :func:`pretrained_teacher`."""
    p = _profile(profile)
    return pretrained_teacher(p) if p.teacher_checkpoint is None else Path(model_directory(p.teacher_checkpoint))
