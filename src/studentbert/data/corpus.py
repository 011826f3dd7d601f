"""The generated English-like corpus (its grammar, topics and topic guessing), and the profile's corpus.

What it is: documents of 4-12 sentences produced by a small grammar from a fixed lexicon of about 1,100 word
types, deterministic from a seed, offline and of any size (100,000 sentences take a few seconds). It is not
real English, and no result obtained on it says anything about real English; it is a stand-in for
Wikipedia + BookCorpus that a 2-core CPU can train a small BERT on in minutes.

Why it looks the way it does: each regularity is there so that one of BERT's pretraining tasks has something
to learn, and so that the chapters can show it being learned.

* **Masked LM needs context from both sides.**

  - Subject-verb agreement across an intervening phrase whose noun has the *other* number (an "attractor"):
    ``The dogs near the old barn run every morning.`` Masking ``run`` needs ``dogs`` on the left; masking
    ``dogs`` needs ``run`` on the *right*.
  - Agreement across a relative clause (long range): ``The cakes that Anna baked last week were warm.``
  - ``a``/``an`` and ``this``/``these``, predictable only from the word that follows:
    ``Tom found an angry goose near the pond.``
  - Gender agreement between a name and later (or earlier) words: ``Tom has a sister called Emma. She ...``
    (``sister`` is predictable from ``Emma`` on its right; ``She`` from ``Emma`` on its left).

* **Next-sentence prediction is decidable.** A document has one *topic* (12 topics, each with its own
  nouns, verbs, places and adjectives), and within it a small *cast*: one or two named characters, a town,
  two kinds of agents, two places, two kinds of objects. Every sentence after the first mentions a character
  of the previous sentence, by name or by pronoun, and the sentences keep returning to the cast. A random
  second segment therefore almost always comes from another topic (11 chances in 12), talks about other
  people and shares few words with the first.

* **A sentence-level task for the later chapters** lives in :mod:`.sentiment`; the corpus contains review
  sentences of its grammar, so a tokenizer trained on the corpus knows every word of the task.

The words come from :mod:`.lexicon`. :func:`profile_corpus` gives a profile's training and held-out documents
(this grammar's, or real text from :mod:`.text`).
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence

from .lexicon import (
    ADVERBS,
    FEELINGS,
    FEMALE_NAMES,
    GENDER,
    MALE_NAMES,
    NEUTRAL_RELATIVES,
    NUMBERS,
    PLACE_ADJECTIVES,
    PREPOSITIONS,
    PRONOUNS,
    RELATIVES,
    REPORT_PRESENT,
    SEE,
    TIMES,
    TOPIC_NAMES,
    TOPICS,
    TOWNS,
    WHEN,
    WORD,
    Topic,
    article,
    capitalise,
)
from .sentiment import review
from .text import load_documents

_PRONOUN_PROB = 0.25  # a character who may be referred to by a pronoun is, with this probability
_TOWN_PROB = 0.4  # share of the sentences that can end with " in <town>" that do


def _cast(rng: random.Random, topic: Topic) -> Topic:
    """The part of a topic's vocabulary that one document uses: a few agents, places, objects, verbs..."""

    def some(xs: tuple, k: int) -> tuple:
        return tuple(rng.sample(xs, min(k, len(xs))))

    return Topic(topic.name, some(topic.roles, 1), some(topic.agents, 2), some(topic.verbs, 2),
                 some(topic.places, 2), some(topic.actions, 2), some(topic.objects, 2), some(topic.qualities, 2),
                 some(topic.adjectives, 2), some(topic.items, 3))


class _Writer:
    """Writes one document: a topic, one or two characters, and sentences that keep talking about them.

    A document does not draw from its topic's whole vocabulary but from a small *cast* of it (two kinds of
    agents, two places, two kinds of objects...), so that its sentences keep mentioning the same things, as real
    documents do: consecutive segments share words, a random segment from elsewhere rarely does.
    """

    def __init__(self, rng: random.Random, topic: Topic) -> None:
        self.rng = rng
        self.t = _cast(rng, topic)
        female = rng.random() < 0.5
        self.names = [rng.choice(FEMALE_NAMES if female else MALE_NAMES)]
        self.town = rng.choice(TOWNS)
        self.mentioned: list[str] = []  # characters the previous sentence mentioned
        self.has_friend_at = rng.randint(1, 3) if rng.random() < 0.6 else -1

    # --- referring to characters ---------------------------------------------------------------
    def _pronoun_ok(self, name: str) -> bool:
        g = GENDER[name]
        return name in self.mentioned and sum(GENDER[n] == g for n in self.mentioned) == 1

    def subject(self) -> tuple[str, str, bool]:
        """(text, the character or "both", plural?) for the subject of the next sentence."""
        rng = self.rng
        if len(self.mentioned) == 2 and rng.random() < 0.25:
            a, b = self.mentioned
            return ("they" if rng.random() < 0.5 else f"{a} and {b}"), "both", True
        name = rng.choice(self.mentioned)
        if self._pronoun_ok(name) and rng.random() < _PRONOUN_PROB:
            return PRONOUNS[GENDER[name]][0], name, False
        return name, name, False

    def _refs(self, who: str) -> list[str]:
        return list(self.names) if who == "both" else [who]

    def poss(self, who: str) -> str:
        return "their" if who == "both" else PRONOUNS[GENDER[who]][2]

    def where(self) -> str:
        """Sometimes " in <town>": the document's town recurs, one more thread between its sentences."""
        return f" in {self.town}" if self.rng.random() < _TOWN_PROB else ""

    # --- sentences ------------------------------------------------------------------------------
    def intro(self) -> str:
        rng, name, role = self.rng, self.names[0], self.rng.choice(self.t.roles)
        k = rng.random()
        if k < 0.4:
            s = f"{name} is {article(role)} {role} who lives in {self.town}."
        elif k < 0.7:
            s = f"{name} works as {article(role)} {role} in {self.town}."
        else:
            s = f"{name} has been {article(role)} {role} in {self.town} for {rng.choice(NUMBERS)} years."
        self.mentioned = [name]
        return s

    def friend(self) -> str:
        rng = self.rng
        subj, who, plural = self.subject()
        if plural:  # introduce the friend through the main character
            subj, who = self.names[0], self.names[0]
        female = rng.random() < 0.5
        pool = [n for n in (FEMALE_NAMES if female else MALE_NAMES) if n != self.names[0]]
        friend = rng.choice(pool)
        self.names.append(friend)
        g = GENDER[friend]
        relative = rng.choice(RELATIVES[g]) if rng.random() < 0.5 else rng.choice(NEUTRAL_RELATIVES)
        if rng.random() < 0.6:
            s = f"{capitalise(subj)} has {article(relative)} {relative} called {friend}."
        else:
            place = rng.choice(self.t.places)[0]
            s = f"{capitalise(subj)} met {self.poss(who)} {relative} {friend} near the {place}."
        self.mentioned = [who, friend]
        return s

    def agreement(self) -> str:
        """The X(s) near the Y(s) verb(s): number agreement across an attractor of the other number."""
        rng, t = self.rng, self.t
        n = rng.random() < 0.5  # plural subject?
        m = (not n) if rng.random() < 0.7 else n  # the attractor usually has the other number
        agent = rng.choice(t.agents)[n]
        place = rng.choice(t.places)[m]
        adj = f"{rng.choice(PLACE_ADJECTIVES)} " if rng.random() < 0.4 else ""
        prep = rng.choice(PREPOSITIONS)
        subj, who, plural = self.subject()
        k = rng.random()
        if k < 0.45:
            verb = rng.choice(t.verbs)[n]
            report = rng.choice(REPORT_PRESENT)[plural]
            s = f"{subj} {report} that the {agent} {prep} the {adj}{place} {verb} {rng.choice(ADVERBS)}."
        elif k < 0.75:
            be = "were" if n else "was"
            s = f"{subj} noticed that the {agent} {prep} the {adj}{place} {be} {rng.choice(t.adjectives)}."
        else:
            verb = rng.choice(t.verbs)[n]
            s = f"the {agent} {prep} {self.poss(who)} {adj}{place} {verb} {rng.choice(ADVERBS)}."
        self.mentioned = self._refs(who)
        return capitalise(s)

    def determiner(self) -> str:
        """a/an and this/these: predictable only from the next word."""
        rng, t = self.rng, self.t
        subj, who, plural = self.subject()
        if rng.random() < 0.6:
            noun = rng.choice(t.objects)[0]
            if rng.random() < 0.5:
                adj = rng.choice(t.qualities)
                phrase = f"{article(adj)} {adj} {noun}"
            else:
                phrase = f"{article(noun)} {noun}"
            see = rng.choice(SEE[:-1])
            s = f"{subj} {see} {phrase} near the {rng.choice(t.places)[0]}{self.where()}."
        else:
            n = rng.random() < 0.5
            noun = rng.choice(t.objects)[n]
            det, be = ("these", "are") if n else ("this", "is")
            report = rng.choice(REPORT_PRESENT)[plural]
            s = f"{subj} {report} that {det} {noun} {be} {rng.choice(t.qualities)}."
        self.mentioned = self._refs(who)
        return capitalise(s)

    def possessive(self) -> str:
        """his/her/himself/herself agree with a name earlier in the sentence or in the previous one."""
        rng, t = self.rng, self.t
        subj, who, plural = self.subject()
        action = rng.choice(t.actions)[2]
        n = rng.random() < 0.5
        obj = rng.choice(t.objects)[n]
        k = rng.random()
        if k < 0.45 and not plural:
            pron = PRONOUNS[GENDER[who]][0]
            s = f"{subj} {action} {self.poss(who)} {obj} before {pron} went to the {rng.choice(t.places)[0]}."
        elif k < 0.7 and not plural:
            refl = PRONOUNS[GENDER[who]][3]
            s = f"{subj} told {refl} that the {obj} {'were' if n else 'was'} {rng.choice(t.qualities)}."
        else:
            s = f"{subj} {action} the {obj} for {self.poss(who)} {rng.choice(NEUTRAL_RELATIVES)}."
        self.mentioned = self._refs(who)
        return capitalise(s)

    def relative_clause(self) -> str:
        """The N(s) that <subject> <verb> <when> was/were ADJ: agreement across a relative clause."""
        rng, t = self.rng, self.t
        subj, who, _ = self.subject()
        n = rng.random() < 0.5
        obj = rng.choice(t.objects)[n]
        action = rng.choice(t.actions)[2]
        be = "were" if n else "was"
        s = f"the {obj} that {subj} {action} {rng.choice(WHEN)} {be} {rng.choice(t.qualities)}."
        self.mentioned = self._refs(who)
        return capitalise(s)

    def action(self) -> str:
        rng, t = self.rng, self.t
        subj, who, _ = self.subject()
        obj = rng.choice(t.objects)[rng.random() < 0.5]
        action = rng.choice(t.actions)[2]
        s = f"{rng.choice(TIMES)}, {subj} {action} the {obj} {rng.choice(PREPOSITIONS)} the " \
            f"{rng.choice(t.places)[0]}{self.where()}."
        self.mentioned = self._refs(who)
        return s

    def feeling(self) -> str:
        rng, t = self.rng, self.t
        subj, who, plural = self.subject()
        n = rng.random() < 0.5
        agent = rng.choice(t.agents)[n]
        s = f"{subj} {'were' if plural else 'was'} {rng.choice(FEELINGS)} because the {agent} " \
            f"{'were' if n else 'was'} {rng.choice(t.adjectives)}."
        self.mentioned = self._refs(who)
        return capitalise(s)

    def review(self) -> str:
        rng = self.rng
        subj, who, plural = self.subject()
        body = review(rng, self.t.items, rng.random() < 0.5)
        if rng.random() < 0.2 and who != "both":
            s = f"According to {who}, {body}."
        else:
            verb = rng.choice(("said", "thought", "felt"))
            s = capitalise(f"{subj} {verb} that {body}.")
        self.mentioned = self._refs(who)
        return s

    def together(self) -> str:
        rng, t = self.rng, self.t
        a, b = self.names
        obj = rng.choice(t.objects)[1]
        s = f"{a} and {b} {rng.choice(t.actions)[2]} the {obj} together near the {rng.choice(t.places)[0]}" \
            f"{self.where()}."
        self.mentioned = [a, b]
        return s

    def write(self, num_sentences: int) -> list[str]:
        rng = self.rng
        sentences = [self.intro()]
        kinds = (self.agreement, self.determiner, self.possessive, self.relative_clause, self.action,
                 self.feeling, self.review)
        weights = (0.22, 0.16, 0.16, 0.13, 0.11, 0.08, 0.14)
        for i in range(1, num_sentences):
            if i == self.has_friend_at:
                sentences.append(self.friend())
            elif len(self.names) == 2 and rng.random() < 0.07:
                sentences.append(self.together())
            else:
                sentences.append(rng.choices(kinds, weights)[0]())
        return sentences


def generate_corpus_with_topics(
    num_documents: int, seed: int = 0, min_sentences: int = 4, max_sentences: int = 12,
    topics: Sequence[str] | None = None,
) -> tuple[list[list[str]], list[str]]:
    """Like :func:`generate_corpus`, and also return each document's topic name."""
    if not isinstance(num_documents, int) or num_documents < 0:
        raise ValueError(f"num_documents must be a non-negative integer, got {num_documents!r}.")
    if not 1 <= min_sentences <= max_sentences:
        raise ValueError(
            f"Need 1 <= min_sentences <= max_sentences, got min_sentences={min_sentences}, "
            f"max_sentences={max_sentences}."
        )
    pool = TOPICS
    if topics is not None:
        unknown = sorted(set(topics) - set(TOPIC_NAMES))
        if unknown or not topics:
            raise ValueError(f"Unknown topics {unknown}; choose a non-empty subset of {list(TOPIC_NAMES)}.")
        pool = tuple(t for t in TOPICS if t.name in set(topics))
    rng = random.Random(seed)
    documents, names = [], []
    for _ in range(num_documents):
        topic = rng.choice(pool)
        documents.append(_Writer(rng, topic).write(rng.randint(min_sentences, max_sentences)))
        names.append(topic.name)
    return documents, names


def generate_corpus(
    num_documents: int, seed: int = 0, min_sentences: int = 4, max_sentences: int = 12,
    topics: Sequence[str] | None = None,
) -> list[list[str]]:
    """Generate ``num_documents`` documents, each a list of ``min_sentences``-``max_sentences`` sentences.

    Deterministic: the same arguments always give the same corpus. See the module docstring for what the
    sentences contain and why. About 8 sentences and 70 words per document.

    Args:
        num_documents: how many documents.
        seed: seed of the generator.
        min_sentences, max_sentences: range of the number of sentences per document (uniform).
        topics: restrict the documents to these topic names (default: all of :data:`TOPIC_NAMES`).

    Returns:
        The documents: ``documents[d][s]`` is sentence ``s`` of document ``d``, a string.
    """
    return generate_corpus_with_topics(num_documents, seed, min_sentences, max_sentences, topics)[0]


def _topic_words() -> dict[str, str]:
    owner: dict[str, set[str]] = {}
    for t in TOPICS:
        words = set(t.roles) | set(t.qualities) | set(t.adjectives)
        words |= {w for group in (t.agents, t.verbs, t.places, t.actions, t.objects) for entry in group for w in entry}
        words |= {w for item in t.items for w in item.split()}
        for w in words:
            owner.setdefault(w, set()).add(t.name)
    return {w: next(iter(names)) for w, names in owner.items() if len(names) == 1}


TOPIC_WORDS: dict[str, str] = _topic_words()
"""Word -> topic, for the words that belong to exactly one topic."""


def guess_topic(text: str) -> str | None:
    """The topic whose own words (:data:`TOPIC_WORDS`) occur most often in ``text``; None if none occurs.

    A bag-of-words guess: on this corpus it is nearly always right for a few sentences, which is why
    next-sentence prediction here is mostly topic detection (as it largely is on real text).
    """
    counts: dict[str, int] = {}
    for w in WORD.findall(text.lower()):
        topic = TOPIC_WORDS.get(w)
        if topic is not None:
            counts[topic] = counts.get(topic, 0) + 1
    return max(counts, key=lambda t: (counts[t], t)) if counts else None


@functools.lru_cache(maxsize=4)
def _documents(corpus: str, corpus_config: str | None, num_documents: int, seed: int) -> list[list[str]]:
    if corpus == "generated":
        return generate_corpus(num_documents, seed=seed)
    return load_documents(corpus, config=corpus_config, max_documents=num_documents or None)


def profile_corpus(profile) -> tuple[list[list[str]], list[list[str]]]:
    """A profile's ``(training documents, held-out documents)``; each document is a list of sentences.

    ``profile.data`` names the corpus: ``"generated"`` (this module's grammar, ``num_documents`` +
    ``heldout_documents`` documents from ``seed``) or a text source of :func:`~studentbert.data.text.load_documents`
    (``num_documents=0``: all of it). The first ``heldout_documents`` documents are held out.
    """
    d = profile.data
    # num_documents=0 means the whole corpus (a dataset); a generated corpus needs a size
    wanted = d.num_documents + d.heldout_documents if d.num_documents or d.corpus == "generated" else 0
    docs = _documents(d.corpus, d.corpus_config, wanted, d.seed)
    if len(docs) <= d.heldout_documents + 1:
        raise ValueError(
            f"The corpus {d.corpus!r} has {len(docs)} documents, too few to hold out {d.heldout_documents} "
            f"and train on the rest.")
    return list(docs[d.heldout_documents:]), list(docs[: d.heldout_documents])
