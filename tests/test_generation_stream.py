"""Word-by-word generation: text assembly, stop sequences, alternatives, several sequences."""
from __future__ import annotations

from dataclasses import replace

import pytest

from models.sampling import SamplingParams
from service.generation import GenerationRequest, TextGenerator, nth_seed
from service.stop_sequences import earliest_stop, undecided_tail
from service.text_assembly import IncrementalText, shown_sentence
from models.text import detokenize, token_text
from hypothesis import given, settings
from hypothesis import strategies as st


@pytest.fixture(scope="module")
def generator(tiny_loaded_model) -> TextGenerator:
    return TextGenerator(tiny_loaded_model.model, tiny_loaded_model.vocab)


def make_request(inputs: str = "", seed: int = 0, num_sentences: int = 1, stop: tuple[str, ...] = (),
                 top_n_tokens: int = 0, repetition_penalty: float = 1.0, **sampling: object) -> GenerationRequest:
    return GenerationRequest(inputs, SamplingParams(**sampling), num_sentences, seed, repetition_penalty, stop,
                             top_n_tokens)


# ---------------------------------------------------------------------------- text assembly
def test_incremental_text_matches_the_detokenizer():
    text = IncrementalText(["the", "cat"])
    added = [text.add(w) for w in ["sat", ",", "did", "n't", "it", "?"]]
    assert text.prompt == "The cat"
    assert added == [" sat", ",", " did", "n't", " it", "?"]
    text.end_sentence()
    assert text.add("she") == " She"
    assert text.text == "The cat sat, didn't it? She"


def test_incremental_text_without_a_prompt_starts_capitalised():
    text = IncrementalText([])
    assert [text.add(w) for w in ["she", "ran", "."]] == ["She", " ran", "."]


def test_incremental_text_keeps_what_was_sent_when_the_detokenizer_respaces():
    text = IncrementalText([])
    added = [text.add(w) for w in ["wait", "--", "she", "ran"]]
    assert "".join(added) == text.text
    assert added[-1] == " ran"  # after the odd word it follows the detokenizer again


class WholeSentenceText:
    """The reference: the whole sentence shown and detokenized again after every word (the clear, slow way)."""

    def __init__(self, forms: dict[str, str]):
        self.words, self.sent, self.text, self.forms = [], "", "", forms

    def add(self, word: str) -> str:
        self.words.append(word)
        self.words_shown = shown_sentence(self.words, self.forms)
        render = detokenize(self.words_shown)
        added = render[len(self.sent):] if render.startswith(self.sent) else f" {token_text(self.words_shown[-1])}"
        self.sent = render
        self.text += added
        return added


WORDS = ["the", "cat", "she", "Cat", "x", "did", "n't", "'s", ",", ".", "!", "?", ";", ":", "``", "''", "(", ")", "-", "--",
         "mr.", "darcy", "it", "'", "said", "$", "%", "&", "...", "o'clock", "ca", "n't", "I", "am", "'m", "[", "]",
         "can", "not", "gon", "na", "got", "ta", "mrs.", "here.", "..", "'t", "is", "<", "#", "'ll", "'re", "'ve",
         "'d", "'S", "N'T", "'LL", "wan", "lem", "me", "more", "'n", "d", "'ye", "Can", "NOT", "--", "--"]


FORMS = {"darcy": "Darcy", "i": "I", "cat": "CAT", "mr.": "Mr."}  # the corpus's case, in a model file that has it


@settings(max_examples=2000, derandomize=True, deadline=None)
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=40), st.sampled_from([{}, FORMS]))
def test_short_path_text_equals_whole_sentence_detokenizing(words, forms):
    fast, slow = IncrementalText([], forms), WholeSentenceText(forms)
    assert [fast.add(w) for w in words] == [slow.add(w) for w in words]
    assert fast.text == slow.text


def test_common_words_are_placed_without_detokenizing(monkeypatch):
    """A word after a spaced dash, a contraction's ending and the word after it, a joined pair:
    placed by the short path (detokenizing a sentence costs about 100 us)."""
    def detokenize_not_expected(words):
        raise AssertionError(f"detokenized {words}")

    text = IncrementalText([])
    monkeypatch.setattr("service.text_assembly.detokenize", detokenize_not_expected)
    words = ["she", "said", "--", "and", "fanny", "'s", "sister", "ca", "n't", "go", ",", "--", "i", "can", "not", "."]
    added = [text.add(w) for w in words]
    assert text.text == "She said -- and fanny's sister can't go, -- i cannot."
    assert added[2:4] == [" --", " and"]  # the detokenizer writes "said--and"; the space sent stays


# ---------------------------------------------------------------------------- stop matching
def test_earliest_stop():
    assert earliest_stop("the cat sat", ["sat", "cat"]) == 4
    assert earliest_stop("the cat sat", ["dog"]) is None
    assert earliest_stop("the cat sat", ["t s"], search_from=8) == 6  # straddles the searched part


def test_undecided_tail():
    assert undecided_tail("the ca", ["cat"]) == 2
    assert undecided_tail("the c", ["cat", "c"]) == 1  # a whole stop would have matched already
    assert undecided_tail("the dog", ["cat"]) == 0
    assert undecided_tail("a", ["abc"]) == 1


# ------------------------------------------------------------------------- the token stream
def run(generator: TextGenerator, request: GenerationRequest):
    generation = generator.start(request)
    return list(generation), generation.result


@pytest.mark.parametrize("seed", range(6))
def test_the_tokens_spell_the_new_text(generator, seed):
    tokens, result = run(generator, make_request("the cat", seed=seed, num_sentences=3, max_new_tokens=30))
    assert "".join(t.text for t in tokens) == result.new_text
    assert tokens == result.tokens
    assert result.prompt_text + result.new_text == " ".join(t for t in result.texts if t)
    ends = [t for t in tokens if t.special]
    assert all(t.id == generator.vocab.end_id and t.text == "" for t in ends)
    assert len(ends) == sum(s.finish_reason == "eos_token" for s in result.sentences)


def test_streaming_and_whole_answers_are_the_same(generator):
    request = make_request("a dog", seed=5, num_sentences=4, stop=("sad",), top_n_tokens=3, max_new_tokens=40)
    tokens, streamed = run(generator, request)
    assert generator.generate(request) == streamed


def find_stopping_request(generator, stop: str) -> GenerationRequest:
    """A request whose text, unstopped, contains ``stop`` after its first word."""
    for seed in range(200):
        request = make_request(seed=seed, num_sentences=3, max_new_tokens=40)
        text = generator.generate(request).new_text
        if stop in text[1:]:
            return replace(request, stop=(stop,))
    raise AssertionError(f"no seed gives {stop!r}")


@pytest.mark.parametrize("stop", ["dog", "at", " the", ". ", "d sat", "a"])
def test_stop_sequences_end_the_text_before_them(generator, stop):
    request = find_stopping_request(generator, stop)
    unstopped = generator.generate(replace(request, stop=())).new_text
    tokens, result = run(generator, request)
    assert result.finish_reason == "stop_sequence"
    assert result.new_text == unstopped[: unstopped.index(stop)]
    assert stop not in result.new_text
    assert "".join(t.text for t in tokens) == result.new_text
    assert result.sentences[-1].finish_reason == "stop_sequence"


def test_no_part_of_a_stop_string_is_ever_streamed(generator):
    stop = "sat on"
    request = find_stopping_request(generator, stop)
    final = generator.generate(request).new_text
    sent = ""
    for token in generator.start(request):
        sent += token.text
        assert final.startswith(sent)  # nothing sent is ever taken back: "sat" waits for its next word
    assert sent == final and stop not in final


def test_the_earliest_of_several_stop_strings_wins(generator):
    request = find_stopping_request(generator, "a")
    result = generator.generate(replace(request, stop=("zzz", "a", "the")))
    assert "a" not in result.new_text and "the" not in result.new_text


def test_alternatives(generator):
    result = generator.generate(make_request(seed=2, top_n_tokens=5, max_new_tokens=20))
    for token in result.tokens:
        assert len(token.alternatives) == 5
        assert [a.logprob for a in token.alternatives] == sorted((a.logprob for a in token.alternatives), reverse=True)
        assert all(a.special == (a.text in ("UNKNOWN_TOKEN", "SENTENCE_START", "SENTENCE_END"))
                   for a in token.alternatives)
    assert generator.generate(make_request(seed=2, max_new_tokens=20)).tokens[0].alternatives == ()


def test_repetition_penalty_reaches_the_sampler(generator):
    plain = generator.generate(make_request(do_sample=False, max_new_tokens=25, min_words=25))
    penalized = generator.generate(make_request(do_sample=False, max_new_tokens=25, min_words=25,
                                                repetition_penalty=10.0))
    words = penalized.sentences[0].new_words
    assert len(set(words)) == len(words) and plain.sentences[0].new_words != words


def test_several_sequences_use_consecutive_seeds(generator):
    request = make_request("the", seed=2**63 - 2, num_sentences=2, max_new_tokens=20)
    several = generator.generate_several(request, 3)
    assert [r.seed for r in several] == [2**63 - 2, 2**63 - 1, 0]
    assert several[2] == generator.generate(replace(request, seed=nth_seed(request.seed, 2)))
    assert several[0] == generator.generate(request)
