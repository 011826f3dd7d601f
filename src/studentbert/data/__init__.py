"""Data for pretraining and fine-tuning: a generated corpus, real text, WordPiece, NSP pairs, MLM masking.

* :mod:`.lexicon`: the words of the generated corpus.
* :mod:`.corpus`: an English-like corpus generated from a seed; a profile's training and held-out documents.
* :mod:`.sentiment`: a labelled sentiment task in the corpus's words, and GLUE SST-2.
* :mod:`.tagging`: named-entity tagging (CoNLL-2003 and a generated stand-in).
* :mod:`.segments`: single-segment examples for distillation.
* :mod:`.corpora`, :mod:`.streaming`: your own corpus files, read whole or streamed (larger than memory).
* :mod:`.text`: real text (local ``.txt`` files, WikiText) as documents of sentences.
* :mod:`.tokenizer`: train, load and check a BERT WordPiece tokenizer.
* :mod:`.pretraining`: sentence pairs for next-sentence prediction and the masked-LM collator.
"""

from .corpus import TOPIC_WORDS, generate_corpus, generate_corpus_with_topics, guess_topic, profile_corpus
from .lexicon import TOPIC_NAMES, TOPICS, Topic
from .pretraining import (
    IS_NEXT,
    NOT_NEXT,
    MLMCollator,
    build_pretraining_examples,
    split_pair,
    tokenize_documents,
)
from .sentiment import bag_of_words_baseline, generate_sentiment, review_form, sentiment_rule, task_datasets
from .streaming import TextStream, stream_files
from .tagging import tagging_dataset
from .text import load_documents, split_sentences
from .tokenizer import (
    SPECIAL_TOKENS,
    TokenizerError,
    check_tokenizer,
    count_words,
    learn_wordpiece_vocabulary,
    load_tokenizer,
    train_wordpiece,
    wordpiece_pair_scores,
)

__all__ = [
    "tagging_dataset",
    "IS_NEXT", "NOT_NEXT", "SPECIAL_TOKENS", "TOPICS", "TOPIC_NAMES", "TOPIC_WORDS", "MLMCollator", "Topic",
    "TokenizerError", "bag_of_words_baseline", "build_pretraining_examples", "check_tokenizer", "count_words",
    "generate_corpus", "generate_corpus_with_topics", "generate_sentiment", "guess_topic",
    "learn_wordpiece_vocabulary", "load_documents", "load_tokenizer", "profile_corpus", "review_form", "sentiment_rule",
    "split_pair", "split_sentences", "task_datasets", "tokenize_documents", "train_wordpiece", "wordpiece_pair_scores",
    "TextStream", "stream_files",
]
