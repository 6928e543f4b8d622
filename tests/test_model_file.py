"""The saved file: a plain dict that round-trips, written atomically, and refused when broken."""
from __future__ import annotations

import os
import stat

import joblib
import numpy as np
import pytest

from models.model_digest import DIGEST_KEY, payload_digest, sealed
from models.model_file import FORMAT_VERSION, ModelFileError, load_model, model_payload, save_model
from models.gru import GRU
from models.rnn import RNN
from models.mixture import NgramMixture
from models.vocabulary import SPECIAL_TOKENS, Vocabulary
from training.kneser_ney import KneserNey
from models.word_classes import WordClasses

PLAIN_TYPES = (dict, list, str, int, float, bool, type(None), np.ndarray)


def small_model():
    vocab = Vocabulary([*SPECIAL_TOKENS, "a", "b", "c"], [1, 5, 5, 3, 2, 1])
    model = RNN(len(vocab), 4, bptt_truncate=2, seed=1)
    model.output.c += 0.5
    return model, vocab


def assert_plain(value, where="payload"):
    assert isinstance(value, PLAIN_TYPES), f"{where} is a {type(value).__name__}"
    if isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str)
            assert_plain(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain(item, f"{where}[{i}]")


def test_round_trip(tmp_path):
    model, vocab = small_model()
    path = tmp_path / "m.joblib"
    save_model(path, model, vocab, {"corpus": "toy", "val_perplexity": 12.5})
    loaded = load_model(path)
    for name in model.parameter_names:
        np.testing.assert_array_equal(loaded.model.parameters()[name], model.parameters()[name])
        assert loaded.model.parameters()[name].dtype == np.float32
    assert loaded.model.bptt_truncate == 2
    assert loaded.vocab.words == vocab.words and loaded.vocab.counts == vocab.counts
    assert loaded.info == {"corpus": "toy", "val_perplexity": 12.5}
    assert_plain(joblib.load(path))
    assert [p.name for p in tmp_path.iterdir()] == ["m.joblib"]  # no temporary file left


def test_class_layer_round_trip(tmp_path):
    vocab = Vocabulary([*SPECIAL_TOKENS, "a", "b", "c", "d"], [1, 5, 5, 9, 3, 2, 1])
    model = RNN(len(vocab), 4, seed=2, classes=WordClasses.from_counts(vocab.counts, 5))
    model.output.c_class += 0.25
    save_model(tmp_path / "m.joblib", model, vocab, {})
    loaded = load_model(tmp_path / "m.joblib").model
    assert loaded.softmax == "class"
    np.testing.assert_array_equal(loaded.classes.starts, model.classes.starts)
    assert loaded.parameter_names == model.parameter_names
    for name in model.parameter_names:
        np.testing.assert_array_equal(loaded.parameters()[name], model.parameters()[name])
    assert joblib.load(tmp_path / "m.joblib")["config"]["softmax"] == "class"


def test_ngram_mixture_round_trip(tmp_path):
    model, vocab = small_model()
    sentences = [[1, 3, 4, 2], [1, 4, 5, 3, 2], [1, 5, 2]]
    mixture = NgramMixture(KneserNey.fit(sentences, 3, len(vocab)).table(), rnn_weight=0.7)
    save_model(tmp_path / "m.joblib", model, vocab, {}, mixture)
    assert_plain(joblib.load(tmp_path / "m.joblib"))
    loaded = load_model(tmp_path / "m.joblib")
    assert loaded.mixture.rnn_weight == 0.7 and loaded.mixture.order == 3
    for history in ([1], [1, 3], [1, 4, 5], [1, 5, 5]):
        np.testing.assert_array_equal(loaded.mixture.ngram.next_word_probs(history),
                                      mixture.ngram.next_word_probs(history))
    assert load_model(save_plain(tmp_path, model, vocab)).mixture is None


def save_plain(tmp_path, model, vocab):
    save_model(tmp_path / "plain.joblib", model, vocab, {})
    return tmp_path / "plain.joblib"


def test_version_one_files_still_load_as_full_softmax(tmp_path):
    model, vocab = small_model()
    payload = model_payload(model, vocab, {})
    payload["format_version"] = 1
    for key in ("softmax", "class_starts"):
        del payload["config"][key]
    joblib.dump(payload, tmp_path / "old.joblib")
    loaded = load_model(tmp_path / "old.joblib")
    assert loaded.model.softmax == "full" and loaded.format_version == 1
    np.testing.assert_array_equal(loaded.model.output.V, model.output.V)


def test_gru_round_trip(tmp_path):
    vocab = Vocabulary([*SPECIAL_TOKENS, "a", "b", "c", "d"], [1, 5, 5, 9, 3, 2, 1])
    model = GRU(len(vocab), 4, bptt_truncate=None, seed=2, classes=WordClasses.from_counts(vocab.counts, 5))
    model.bz += 0.5
    save_model(tmp_path / "m.joblib", model, vocab, {})
    payload = joblib.load(tmp_path / "m.joblib")
    assert payload["config"]["cell"] == "gru"
    assert_plain(payload)
    loaded = load_model(tmp_path / "m.joblib").model
    assert isinstance(loaded, GRU) and loaded.cell == "gru" and loaded.bptt_truncate is None
    assert loaded.parameter_names == model.parameter_names
    for name in model.parameter_names:
        np.testing.assert_array_equal(loaded.parameters()[name], model.parameters()[name])


def test_a_file_without_a_cell_is_an_rnn_and_an_unknown_cell_is_refused(tmp_path):
    model, vocab = small_model()
    payload = model_payload(model, vocab, {})
    assert payload["config"]["cell"] == "rnn"
    del payload["config"]["cell"]
    payload["format_version"] = 2
    joblib.dump(payload, tmp_path / "v2.joblib")
    loaded = load_model(tmp_path / "v2.joblib").model
    assert type(loaded) is RNN and loaded.cell == "rnn"
    np.testing.assert_array_equal(loaded.W, model.W)
    payload["config"]["cell"] = "transformer"
    joblib.dump(payload, tmp_path / "transformer.joblib")
    with pytest.raises(ModelFileError, match="unknown cell 'transformer'"):
        load_model(tmp_path / "transformer.joblib")


def test_saved_file_is_readable_by_others_under_the_usual_umask(tmp_path):
    model, vocab = small_model()
    previous = os.umask(0o022)
    try:
        save_model(tmp_path / "m.joblib", model, vocab, {})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "m.joblib").stat().st_mode) == 0o644


def refuse(path, match):
    with pytest.raises(ModelFileError, match=match) as caught:
        load_model(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_broken_files_are_refused_with_a_one_line_reason(tmp_path):
    model, vocab = small_model()
    refuse(tmp_path / "missing.joblib", "no such file")
    garbage = tmp_path / "garbage.joblib"
    garbage.write_bytes(b"not a pickle at all")
    refuse(garbage, "cannot be read")
    good = tmp_path / "good.joblib"
    save_model(good, model, vocab, {})
    truncated = tmp_path / "truncated.joblib"
    truncated.write_bytes(good.read_bytes()[:200])
    refuse(truncated, "cannot be read")
    other = tmp_path / "other.joblib"
    joblib.dump({"something": "else"}, other)
    refuse(other, "not an rnnlm model file")
    not_a_dict = tmp_path / "list.joblib"
    joblib.dump([1, 2, 3], not_a_dict)
    refuse(not_a_dict, "not an rnnlm model file")

    def variant(name, change):
        """A file with ``change`` made and its digest recomputed: the checks behind the digest."""
        payload = model_payload(model, vocab, {})
        change(payload)
        path = tmp_path / name
        joblib.dump(sealed(payload), path)
        return path

    refuse(variant("version.joblib", lambda p: p.update(format_version=FORMAT_VERSION + 1)), "format version")
    refuse(variant("shape.joblib", lambda p: p["params"].update(W=np.zeros((3, 3)))), "shape")
    refuse(variant("nan.joblib", lambda p: p["params"]["V"].__setitem__((0, 0), np.nan)), "NaN")
    refuse(variant("vocab.joblib", lambda p: p["vocabulary"].pop()), "vocabulary has 5 words")
    refuse(variant("nokey.joblib", lambda p: p.pop("params")), "malformed")


def test_the_file_carries_the_sha256_of_its_contents(tmp_path):
    model, vocab = small_model()
    save_model(tmp_path / "m.joblib", model, vocab, {"note": "x"})
    payload = joblib.load(tmp_path / "m.joblib")
    assert payload["format_version"] == FORMAT_VERSION and len(payload[DIGEST_KEY]) == 64
    assert payload[DIGEST_KEY] == payload_digest(payload) == payload_digest(model_payload(model, vocab, {"note": "x"}))
    # every part counts: one value of one array, one word, the info
    for change in (lambda p: p["params"]["W"].__setitem__((1, 2), p["params"]["W"][1, 2] + 1e-7),
                   lambda p: p["vocabulary"].__setitem__(4, "B"), lambda p: p["info"].update(note="y")):
        changed = model_payload(model, vocab, {"note": "x"})
        change(changed)
        assert payload_digest(changed) != payload[DIGEST_KEY]


def test_a_damaged_or_unsealed_file_is_refused(tmp_path):
    model, vocab = small_model()
    good = tmp_path / "good.joblib"
    save_model(good, model, vocab, {})
    raw = bytearray(good.read_bytes())
    at = raw.index(model.output.V.astype(np.float32).tobytes()[:16])  # a bit of V's bytes on disk
    raw[at + 5] ^= 0x10
    flipped = tmp_path / "flipped.joblib"
    flipped.write_bytes(bytes(raw))
    refuse(flipped, "contents do not match their SHA-256")
    payload = joblib.load(good)
    del payload[DIGEST_KEY]
    joblib.dump(payload, tmp_path / "unsealed.joblib")
    refuse(tmp_path / "unsealed.joblib", "has no SHA-256")
    payload["format_version"] = 3  # files from before the digest load as they are
    joblib.dump(payload, tmp_path / "v3.joblib")
    assert load_model(tmp_path / "v3.joblib").format_version == 3
