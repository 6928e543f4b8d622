"""The corpus's case of words: counted where tokens are lower-cased, kept in the model file, and
shown in generated text together with quotation marks turned the way they go."""
from __future__ import annotations

import numpy as np

from models.casing import cased_words, count_surface_forms, majority_forms
from models.model_file import atomic_dump, load_model, model_payload, save_model
from models.rnn import RNN
from models.vocabulary import Vocabulary
from service.text_assembly import IncrementalText, quotes_directed
from training.dataset import load_dataset


def test_a_word_takes_its_most_frequent_form_away_from_sentence_starts():
    sentences = [["The", "cat", "saw", "Elinor", "."], ["Elinor", "said", "I", "would", "."],
                 ["The", "Cat", "and", "the", "cat", "."], ["Chapter", "one", "."], ["Chapter", "two", "."],
                 ["chapter", "three", "."], ["``", "Well", ",", "''", "said", "I", "."], ["if", "i", "go"]]
    forms = majority_forms(count_surface_forms(sentences))
    assert forms["elinor"] == "Elinor"  # once inside a sentence: that decides, not its start
    assert forms["i"] == "I"  # twice "I" inside against once "i"
    assert "the" not in forms and "cat" not in forms  # "the" is lower inside; "cat" twice against one "Cat"
    assert forms["chapter"] == "Chapter"  # only ever at sentence starts: the most frequent form there
    assert forms["well"] == "Well"  # after an opening quotation mark: still the sentence's start
    assert set(forms) == {"elinor", "i", "chapter", "well"}


def test_ties_go_to_the_lower_case_form():
    counts = count_surface_forms([["a", "Rose", "."], ["a", "rose", "."]])
    assert "rose" not in majority_forms(counts)


def test_a_sentences_first_word_is_capitalised_even_after_a_quotation_mark():
    forms = {"elinor": "Elinor", "i": "I"}
    assert cased_words(["``", "i", "saw", "elinor", "."], forms) == ["``", "I", "saw", "Elinor", "."]
    assert cased_words(["not", "now"], {}) == ["Not", "now"]
    assert cased_words(["not", "now"], {}, sentence_start=False) == ["not", "now"]


def test_quotation_marks_are_turned_the_way_they_go():
    assert quotes_directed(["''", "not", "immediately", "!", "''"]) == ["``", "not", "immediately", "!", "''"]
    assert quotes_directed(["she", "cried", "--", "''", "oh", "!", "''"]) == ["she", "cried", "--", "``", "oh", "!", "''"]
    assert quotes_directed(["yes", ",", "''", "said", "he", "."]) == ["yes", ",", "''", "said", "he", "."]
    assert quotes_directed(["``", "a", "``", "b"]) == ["``", "a", "''", "b"]  # an open quotation closes first


def test_generated_text_reads_like_the_corpus():
    text = IncrementalText([], {"elinor": "Elinor", "i": "I"})
    added = [text.add(w) for w in ["''", "not", "immediately", "!", "''", "said", "elinor", "."]]
    assert text.text == "".join(added) == '"Not immediately!" said Elinor.'
    text.end_sentence()
    for word in ["she", "cried", "--", "''", "i", "know", "!", "''"]:
        text.add(word)
    assert text.text.endswith(' She cried -- "I know!"')
    assert IncrementalText(["i", "think"], {"i": "I"}).prompt == "I think"
    assert IncrementalText(["i", "think"]).prompt == "I think"  # no casing: the sentence start alone


def test_the_token_cache_counts_the_training_texts_case(tmp_path):
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    train.write_text("Elinor saw the cat. Then Elinor and I left.\n\nI think the Cat was not there.\n", encoding="utf-8")
    valid.write_text("So the Cat sat. And the Cat ran.\n", encoding="utf-8")
    dataset = load_dataset(str(train), str(valid), tmp_path, 30)
    # "cat": once "cat", once "Cat" inside the training text's sentences, a tie; the validation
    # text's "Cat"s are not counted. "Then" is only ever seen starting a sentence.
    assert dataset.vocab.casing == {"elinor": "Elinor", "i": "I", "then": "Then"}


def test_the_model_file_keeps_the_casing_and_older_files_show_lower_case(tmp_path):
    vocab = Vocabulary(["UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END", "elinor", "the"], [0, 1, 1, 2, 3],
                       {"elinor": "Elinor", "marianne": "Marianne"})
    assert vocab.casing == {"elinor": "Elinor"}  # only the vocabulary's words
    model = RNN(5, 3, seed=0)
    save_model(tmp_path / "new.joblib", model, vocab, {})
    assert load_model(tmp_path / "new.joblib").vocab.casing == {"elinor": "Elinor"}
    older = model_payload(model, vocab, {})
    del older["casing"]
    atomic_dump(older, tmp_path / "old.joblib")
    loaded = load_model(tmp_path / "old.joblib")
    assert loaded.vocab.casing == {} and np.array_equal(loaded.model.output.V, model.output.V)
