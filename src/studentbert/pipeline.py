"""Artifacts shared between chapters: the corpus, the tokenizer, the teacher, the student.

Every chapter runs on its own (papermill runs each alone), yet the book in order should do the work
once. So each artifact lives in a cache directory named by the profile and a hash of the settings it
depends on: a chapter asks for it, gets it at once if an earlier chapter made it with the same settings,
and makes it otherwise. The cache root is ``$STUDENTBERT_HOME`` (default ``~/.cache/studentbert``).
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

from .profiles import Profile, get_profile


def home() -> Path:
    return Path(os.environ.get("STUDENTBERT_HOME", Path.home() / ".cache" / "studentbert"))


# The modules whose code decides what an artifact (corpus, tokenizer, teacher, student) contains. Editing one of
# them makes the cache build the artifact again; editing anything else (plots, benchmarks, fine-tuning, the
# command line) keeps the expensive artifacts.
ARTIFACT_MODULES = (
    "attention.py", "bert.py", "config.py", "distill.py", "distilbert.py", "encoder.py", "hf.py", "losses.py",
    "pipeline.py", "pretrain.py", "profiles.py", "student_init.py", "training.py", "gpus.py", "flops.py",
    "data/__init__.py", "data/corpus.py", "data/pretraining.py", "data/segments.py", "data/text.py",
    "data/tokenizer.py",
)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the source of :data:`ARTIFACT_MODULES`: an artifact made by other code (another corpus
    grammar, another loss) is not silently reused."""
    root = Path(__file__).parent
    digest = hashlib.sha1()
    for name in ARTIFACT_MODULES:
        digest.update(name.encode())
        digest.update((root / name).read_bytes())
    return digest.hexdigest()[:8]


def artifact_dir(profile: Profile, kind: str, *parts: str) -> Path:
    """``$STUDENTBERT_HOME/<profile>/<kind>-<hash of the settings named in parts>-<code fingerprint>``."""
    return home() / profile.name / f"{kind}-{profile.key(*parts)}-{code_fingerprint()}"


def _profile(profile: Profile | str) -> Profile:
    return get_profile(profile) if isinstance(profile, str) else profile


def _fitted(profile: Profile) -> Profile:
    """The profile's training runs with the precision and gradient accumulation that fit the GPU at hand
    (:func:`studentbert.gpus.fit_to_gpu`; the global batch is unchanged). On a CPU, unchanged."""
    from .gpus import fit_to_gpu

    return fit_to_gpu(profile) if profile.name == "full" else profile


@functools.lru_cache(maxsize=4)
def _documents(corpus: str, corpus_config: str | None, num_documents: int, seed: int):
    from .data import generate_corpus, load_documents

    if corpus == "generated":
        return generate_corpus(num_documents, seed=seed)
    return load_documents(corpus, config=corpus_config, max_documents=num_documents or None)


def corpus(profile: Profile | str) -> tuple[list[list[str]], list[list[str]]]:
    """``(train documents, held-out documents)``; each document is a list of sentences."""
    d = _profile(profile).data
    # num_documents=0 means the whole corpus (a dataset); a generated corpus needs a size
    wanted = d.num_documents + d.heldout_documents if d.num_documents or d.corpus == "generated" else 0
    docs = _documents(d.corpus, d.corpus_config, wanted, d.seed)
    if len(docs) <= d.heldout_documents + 1:
        raise ValueError(
            f"The corpus {d.corpus!r} has {len(docs)} documents, too few to hold out {d.heldout_documents} "
            f"and train on the rest.")
    return list(docs[d.heldout_documents:]), list(docs[: d.heldout_documents])


def tokenizer_for(profile: Profile | str):
    """The profile's tokenizer: trained on the corpus once (WordPiece), or a pretrained one by name."""
    from .data import check_tokenizer, load_tokenizer, train_wordpiece

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
    from .pretrain import pretrain

    p = _fitted(_profile(profile))
    run = artifact_dir(p, "teacher", "data", "teacher", "pretrain")
    if (run / "model" / "config.json").is_file() and (run / "results.json").is_file():
        return run / "model"
    return pretrain(p, run)


def distilled_student(profile: Profile | str) -> Path:
    """Directory of the profile's distilled student (``AutoModelForMaskedLM`` format), distilling it if needed.

    The teacher is :func:`pretrained_teacher` (or the profile's ``teacher_checkpoint`` when it names one);
    the loss is DistilBERT's triple loss with its default weights. The run directory is the returned path's parent.
    """
    from .distill import distill

    p = _fitted(_profile(profile))
    teacher = p.teacher_checkpoint or pretrained_teacher(p)
    run = artifact_dir(p, "student", "data", "teacher", "pretrain", "student_layers", "distill")
    if (run / "model" / "config.json").is_file() and (run / "results.json").is_file():
        return run / "model"
    return distill(p, teacher, run)
