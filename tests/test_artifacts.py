"""studentbert.artifacts: the corpus a profile names, split into training and held-out documents; the cache's
code fingerprint."""

import dataclasses

import pytest

from studentbert import get_profile
from studentbert.artifacts import corpus


def _profile_on_text(tmp_path, n: int, num_documents: int, heldout_documents: int):
    """The tiny profile, reading a local corpus of ``n`` two-sentence documents."""
    path = tmp_path / "corpus.txt"
    path.write_text("\n\n".join(f"Document {d} starts here. It has a second sentence." for d in range(n)) + "\n")
    p = get_profile("tiny")
    return p.replace(data=dataclasses.replace(p.data, corpus=str(path), num_documents=num_documents,
                                              heldout_documents=heldout_documents))


def test_num_documents_zero_means_the_whole_corpus(tmp_path):
    """The full profile's setting (num_documents=0, some held out) used to load only the held-out count."""
    p = _profile_on_text(tmp_path, 12, num_documents=0, heldout_documents=3)
    train, heldout = corpus(p)
    assert (len(train), len(heldout)) == (9, 3)
    assert heldout[0][0].startswith("Document 0") and train[-1][0].startswith("Document 11")


def test_num_documents_caps_the_corpus(tmp_path):
    p = _profile_on_text(tmp_path, 12, num_documents=5, heldout_documents=2)
    train, heldout = corpus(p)
    assert (len(train), len(heldout)) == (5, 2)


def test_too_small_a_corpus_is_a_clear_error(tmp_path):
    p = _profile_on_text(tmp_path, 3, num_documents=0, heldout_documents=3)
    with pytest.raises(ValueError, match="too few to hold out"):
        corpus(p)
