"""Kneser-Ney n-gram models, RNN text scoring, and the evaluate command."""
from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from collections import Counter, defaultdict
from fractions import Fraction

import numpy as np
import pytest

from models.batching import sentence_pairs
from models.rnn import RNN
from models.scoring import score_sentences, score_text
from models.vocabulary import SENTENCE_END, Vocabulary
from tests.gunicorn_server import REPO_ROOT
from tests.toy_corpus import write_toy_model
from training import evaluate
from training.kneser_ney import (
    FALLBACK_DISCOUNTS, Discounts, KneserNey, count_of_counts, estimate_discounts, kn_counts,
)

S, E = Vocabulary.start_id, Vocabulary.end_id
A, B, C = 3, 4, 5  # the words a, b, c of the hand-worked corpus; 0 is UNKNOWN_TOKEN
HAND_CORPUS = [[S, A, B, E], [S, A, C, E], [S, B, E], [S, A, B, E]]
HALF_ONE_ONE_AND_HALF = Discounts(0.5, 1.0, 1.5)


def close(value: float, fraction: Fraction) -> bool:
    return math.isclose(value, float(fraction), rel_tol=1e-12)


# ------------------------------------------------------------------ Kneser-Ney by hand
def test_discounts_follow_chen_and_goodman():
    # Y = 10 / (10 + 2*5) = 1/2; D1 = 1 - 2Y 5/10; D2 = 2 - 3Y 3/5; D3+ = 3 - 4Y 2/3
    d = estimate_discounts(10, 5, 3, 2)
    assert (d.one, d.two) == pytest.approx((0.5, 1.1))
    assert d.three_plus == pytest.approx(3 - 4 / 3)
    assert estimate_discounts(0, 5, 3, 2) is None  # undefined
    assert estimate_discounts(10, 5, 1, 100) is None  # D3+ would be negative
    assert count_of_counts([1, 1, 2, 3, 4, 4, 4, 7]) == (2, 1, 1, 3)


def test_counts_are_raw_at_the_top_and_at_sentence_openings_else_continuation():
    unigrams, bigrams, trigrams = kn_counts(HAND_CORPUS, 3, S)
    assert trigrams[(S, A, B)] == 2 and trigrams[(A, B, E)] == 2  # raw
    assert bigrams[(S, A)] == 3  # opens sentences: raw
    assert bigrams[(A, B)] == 1  # seen twice, but only ever after SENTENCE_START
    assert bigrams[(B, E)] == 2  # after a and after SENTENCE_START
    assert dict(unigrams) == {(A,): 1, (B,): 2, (C,): 1, (E,): 2}  # SENTENCE_START is never predicted


def test_probabilities_match_hand_computation():
    """The 4-sentence corpus, vocabulary UNK S E a b c (5 predictable words), all discounts 0.5/1/1.5."""
    model = KneserNey.fit(HAND_CORPUS, 3, 6, discounts=[HALF_ONE_ONE_AND_HALF] * 3)
    # unigram: continuation counts a1 b2 c1 E2 (total 6); gamma = (0.5*2 + 1*2)/6 = 1/2; uniform 1/5
    p1 = {A: Fraction(1, 12) + Fraction(1, 10), B: Fraction(1, 6) + Fraction(1, 10), E: Fraction(1, 6) + Fraction(1, 10),
          0: Fraction(1, 10)}
    assert all(close(model.prob([], w), p) for w, p in p1.items())
    # bigram (a): a(a b)=1, a(a c)=1, total 2, gamma 1/2
    p2_b_a = Fraction(1, 4) + Fraction(1, 2) * p1[B]
    assert close(model.prob([A], B), p2_b_a)  # 23/60
    # (S): raw counts 3 (a) and 1 (b), total 4, gamma (1.5 + 0.5)/4 = 1/2
    assert close(model.prob([S], A), Fraction(3, 2) / 4 + Fraction(1, 2) * p1[A])  # 7/15
    # trigram (S a): c(S a b)=2, c(S a c)=1, total 3, gamma (1 + 0.5)/3 = 1/2
    assert close(model.prob([S, A], B), Fraction(1, 3) + Fraction(1, 2) * p2_b_a)  # 21/40
    # unseen (c a) falls back to (a): E never follows a, so only the backed-off mass
    assert close(model.prob([C, A], E), Fraction(1, 2) * p1[E])
    assert model.prob([S, A], S) == 0.0 and model.log_prob([S], S) == -math.inf
    # a sentence: log p(a|S) + log p(b|S a) + log p(E|a b)
    expected = math.log(model.prob([S], A)) + math.log(model.prob([S, A], B)) + math.log(model.prob([A, B], E))
    assert model.sentence_log_likelihood([S, A, B, E]) == pytest.approx(expected)


# a b c twice, c a b, b a b c: (a b c) is seen 3 times but after only 2 different words (S, b)
ORDER_FOUR_CORPUS = [[S, A, B, C, E], [S, A, B, C, E], [S, C, A, B, E], [S, B, A, B, C, E]]
# a different set of discounts per order, so a weight taken from the wrong order or context shows
ORDER_FOUR_DISCOUNTS = [Discounts(0.5, 1.0, 1.5), Discounts(0.25, 0.5, 0.75), Discounts(0.75, 1.0, 1.25),
                        Discounts(0.5, 1.5, 2.0), Discounts(0.5, 1.0, 1.5)]


def test_order_four_middle_orders_and_sentence_openings_match_hand_computation():
    """Orders 3, 4 and 5 by hand: the middle (3-gram) level of a 4-gram model uses continuation counts,
    n-grams opening a sentence keep raw counts, and a history shorter than the order keeps its
    SENTENCE_START (an old slice dropped it at orders >= 4: 4-gram perplexity 99.6 instead of 98.0)."""
    unigrams, bigrams, trigrams, fourgrams = kn_counts(ORDER_FOUR_CORPUS, 4, S)
    assert fourgrams[(A, B, C, E)] == 3 and fourgrams[(S, A, B, C)] == 2  # raw at the top
    assert trigrams[(A, B, C)] == 2 and trigrams[(A, B, E)] == 1  # continuation: raw 3 but only after S and b
    assert trigrams[(S, A, B)] == 2  # opens sentences: raw
    assert bigrams[(A, B)] == 3 and dict(unigrams) == {(A,): 3, (B,): 2, (C,): 2, (E,): 2}
    fit = {order: KneserNey.fit(ORDER_FOUR_CORPUS, order, 6, discounts=ORDER_FOUR_DISCOUNTS[:order]) for order in (3, 4, 5)}
    four = fit[4]
    # unigram (D 1/2, 1, 3/2): a3 b2 c2 E2, total 9, gamma (3/2 + 3*1)/9 = 1/2, uniform 1/5
    p1_b = Fraction(1, 9) + Fraction(1, 10)  # = p1(c) = p1(E) = 19/90
    assert close(four.prob([], A), Fraction(3, 2) / 9 + Fraction(1, 10))  # 4/15
    # bigrams (D 1/4, 1/2, 3/4): (b): c1 E1 a1, gamma (3/4)/3 = 1/4; (c): E1 a1, gamma 1/4; (a): b3, gamma 1/4
    p2_c_b = Fraction(3, 4) / 3 + Fraction(1, 4) * p1_b  # 109/360
    p2_e_c = Fraction(3, 4) / 2 + Fraction(1, 4) * p1_b  # 77/180
    p2_b_a = Fraction(9, 4) / 3 + Fraction(1, 4) * p1_b  # 289/360
    # (S): raw a2 b1 c1, total 4, gamma (1/2 + 1/4 + 1/4)/4 = 1/4
    assert close(four.prob([S], A), Fraction(3, 2) / 4 + Fraction(1, 4) * Fraction(4, 15))  # 53/120
    # trigrams of the 4-gram model (D 3/4, 1, 5/4): (a b): c2 E1 (continuation), total 3, gamma (1 + 3/4)/3
    p3_c_ab = Fraction(1, 3) + Fraction(7, 12) * p2_c_b  # 2203/4320
    assert close(four.prob([A, B], C), p3_c_ab)
    # (S a): raw b2, gamma 1/2: w2 of a sentence is predicted from (S, w1), not from (w1) alone
    p3_b_sa = Fraction(1, 2) + Fraction(1, 2) * p2_b_a  # 649/720
    assert close(four.prob([S, A], B), p3_b_sa)
    p3_e_bc = Fraction(1, 4) + Fraction(3, 4) * p2_e_c  # (b c): E1, gamma 3/4
    # 4-grams (D 1/2, 3/2, 2; raw): (S a b): c2, gamma (3/2)/2; (a b c): E3, gamma 2/3; (c a b): E1, gamma 1/2
    p4_c_sab = Fraction(1, 2) / 2 + Fraction(3, 4) * p3_c_ab  # 3643/5760
    p4_e_abc = Fraction(1, 3) + Fraction(2, 3) * p3_e_bc  # 257/360
    assert close(four.prob([S, A, B], C), p4_c_sab)
    assert close(four.prob([A, B, C], E), p4_e_abc)
    assert close(four.prob([C, A, B], C), Fraction(1, 2) * p3_c_ab)  # c never follows (c a b): the middle order's share
    expected = sum(math.log(float(p)) for p in (Fraction(53, 120), p3_b_sa, p4_c_sab, p4_e_abc))
    assert four.sentence_log_likelihood([S, A, B, C, E]) == pytest.approx(expected, rel=1e-12)
    # the trigram model: (a b) is now the top order, raw c3 E1, total 4, gamma (5/4 + 3/4)/4 = 1/2
    assert close(fit[3].prob([A, B], C), Fraction(7, 4) / 4 + Fraction(1, 2) * p2_c_b)  # 53/90
    assert close(fit[3].prob([S, A], B), p3_b_sa)
    # the 5-gram model: (S a b c) opens a sentence, so its count and the levels below are as at order 4
    assert close(fit[5].prob([S, A, B], C), p4_c_sab)
    for model in fit.values():
        for context in ([S, A], [S, A, B], [A, B], [C, A, B]):
            assert math.fsum(model.prob(context, w) for w in range(6)) == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------- random corpora
def random_corpus(seed: int, sentences: int = 300, words: int = 12) -> list[list[int]]:
    """Sentences of 1-8 words over ids 3..3+words-1, Zipf-like, so every count-of-count is non-zero."""
    rng = random.Random(seed)
    ids = list(range(3, 3 + words))
    weights = [1 / (rank + 1) for rank in range(words)]
    return [[S, *rng.choices(ids + [0], weights + [0.3], k=rng.randint(1, 8)), E] for _ in range(sentences)]


def definition_counts(sentences: list[list[int]], order: int) -> list[Counter]:
    """a_k straight from the definition: every window, its raw count or the set of words before it."""
    levels = []
    for k in range(1, order + 1):
        raw: Counter = Counter()
        before: defaultdict = defaultdict(set)
        for s in sentences:
            for i in range(len(s) - k + 1):
                gram = tuple(s[i : i + k])
                raw[gram] += 1
                if i > 0:
                    before[gram].add(s[i - 1])
        levels.append(Counter({g: (c if k == order or g[0] == S else len(before[g])) for g, c in raw.items()
                               if g != (S,)}))
    return levels


def test_counts_and_each_orders_discounts_follow_the_definitions():
    corpus = random_corpus(seed=1, sentences=150)
    assert kn_counts(corpus, 4, S) == definition_counts(corpus, 4)
    model = KneserNey.fit(corpus, 4, 17)
    estimated = 0
    for k, counts in enumerate(definition_counts(corpus, 4), start=1):
        expected = estimate_discounts(*count_of_counts(counts.values()))
        estimated += expected is not None
        assert model.discounts[k - 1] == (expected or FALLBACK_DISCOUNTS)
    assert estimated >= 3


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5])
def test_probabilities_sum_to_one_over_the_vocabulary(order):
    corpus = random_corpus(seed=order)
    vocab_size = 3 + 12 + 2  # two words that never occur in training
    model = KneserNey.fit(corpus, order, vocab_size)
    seen = next(s for s in corpus if len(s) >= 6)[:5]
    contexts = [
        [],
        [S],  # a sentence opening
        seen[-4:],  # seen at every length
        seen[1:4],  # seen, not at an opening
        [vocab_size - 1, vocab_size - 2, 5, 6],  # never seen
        [vocab_size - 1, *seen[1:3]],  # seen only in part
        [vocab_size - 1, S],
    ]
    for context in contexts:
        probs = [model.prob(context, w) for w in range(vocab_size)]
        assert math.fsum(probs) == pytest.approx(1.0, abs=1e-12), context
        assert probs[S] == 0.0 and min(p for w, p in enumerate(probs) if w != S) > 0


# ------------------------------------------------------------------ RNN scoring
def test_score_sentences_matches_forward_propagation(tiny_loaded_model):
    model = tiny_loaded_model.model
    rng = np.random.default_rng(3)
    sentences = [[S, *rng.integers(3, model.vocab_size, size=n).tolist(), E] for n in (5, 0, 3, 9, 1, 3, 7, 2)]
    scores = score_sentences(model, sentences, batch_size=3)  # several batches of mixed lengths
    for sentence, got in zip(sentences, scores):
        o, _ = model.forward_propagation(sentence[:-1])
        expected = np.log(o[np.arange(len(sentence) - 1), sentence[1:]])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_score_text_flags_unknown_words_and_keeps_sentences_apart(tiny_loaded_model):
    model, vocab = tiny_loaded_model.model, tiny_loaded_model.vocab
    result = score_text(model, vocab, "The cat sat on the zebra. She ran!\n\nBig dog\n\nwombats flew")
    assert [s.tokens for s in result.sentences] == [
        ["the", "cat", "sat", "on", "the", "zebra", ".", SENTENCE_END],
        ["she", "ran", "!", SENTENCE_END],
        ["big", "dog", SENTENCE_END],  # a paragraph break ends a sentence, as in training
        ["wombats", "flew", SENTENCE_END],
    ]
    assert [i for s in result.sentences for i, unknown in enumerate(s.unknown) if unknown] == [5, 0]
    assert result.tokens == 18 and result.unknown_words == 2 and result.unk_rate == pytest.approx(2 / 18)
    first = result.sentences[0]
    ids = vocab.encode_sentence(first.tokens[:-1])
    o, _ = model.forward_propagation(ids[:-1])
    assert first.log_probs[5] == pytest.approx(math.log(o[5, vocab.unknown_id]), abs=1e-5)
    assert first.perplexity == pytest.approx(math.exp(-sum(first.log_probs) / 8))
    all_log_probs = [lp for s in result.sentences for lp in s.log_probs]
    assert result.perplexity == pytest.approx(math.exp(-sum(all_log_probs) / 18))
    with pytest.raises(ValueError, match="no words"):
        score_text(model, vocab, " \n ")


# ------------------------------------------------------------------ the command
@pytest.fixture(scope="module")
def toy_setup(tmp_path_factory):
    """The toy corpus and an untrained model with its vocabulary."""
    return write_toy_model(tmp_path_factory.mktemp("evaluate"))


def test_evaluate_command_prints_json_figures(toy_setup):
    corpus, model_path, dataset = toy_setup
    done = subprocess.run(
        [sys.executable, "training/evaluate.py", "--model", str(model_path), "--corpus", str(corpus),
         "--ngram", "3,2", "--threads", "1"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["tokens"] == dataset.valid_words and summary["sentences"] == len(dataset.valid)
    targets = [t for s in dataset.valid for t in s[1:]]
    assert summary["unk_rate"] == pytest.approx(targets.count(0) / len(targets))
    untrained = RNN(len(dataset.vocab), 8, seed=1)
    assert summary["perplexity"] == pytest.approx(math.exp(untrained.calculate_loss(*sentence_pairs(dataset.valid))), rel=1e-4)
    assert sorted(summary["ngram"]) == ["1", "2", "3"]
    kn3 = KneserNey.fit(dataset.train, 3, len(dataset.vocab)).perplexity(dataset.valid)
    assert summary["ngram"]["3"]["perplexity"] == pytest.approx(kn3)
    # the toy language is learnable: the trigram beats the unigram by far
    assert summary["ngram"]["3"]["perplexity"] < summary["ngram"]["1"]["perplexity"] / 3


def test_evaluate_scores_a_text_file(tiny_model_path, tiny_loaded_model, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("The cat sat on a mat.\nIt flew!\n", encoding="utf-8")
    assert evaluate.main(["--model", str(tiny_model_path), "--text", str(text), "--threads", "1"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["tokens"] == (7 + 1) + (3 + 1) and summary["unk_rate"] == 0 and summary["text"] == str(text)
    assert "ngram" not in summary and "corpus" not in summary
    expected = score_text(tiny_loaded_model.model, tiny_loaded_model.vocab, text.read_text()).perplexity
    assert summary["perplexity"] == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("problem", ["missing model", "broken model", "missing text"])
def test_evaluate_errors_are_one_line(problem, tiny_model_path, tmp_path, capsys):
    model, text = str(tiny_model_path), str(tmp_path / "absent.txt")
    if problem == "missing model":
        model = str(tmp_path / "absent.joblib")
    elif problem == "broken model":
        model = str(tmp_path / "broken.joblib")
        (tmp_path / "broken.joblib").write_bytes(b"not a model")
    assert evaluate.main(["--model", model, "--text", text]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("evaluate.py: ") and (model if problem != "missing text" else text) in lines[0]


def test_evaluate_missing_model_from_the_shell_and_bad_flags(tmp_path):
    done = subprocess.run([sys.executable, "training/evaluate.py", "--model", str(tmp_path / "none.joblib")],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and done.stderr.strip() == f"evaluate.py: {tmp_path / 'none.joblib'}: no such file"
    with pytest.raises(SystemExit) as exit_info:
        evaluate.main(["--model", "m.joblib", "--ngram", "0,x"])
    assert exit_info.value.code == 2
