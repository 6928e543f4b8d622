"""The batched mixture draw (models/mixture_draws.py) against the dense draw written for clarity
(``reference_draw``): the same words and log-probabilities, with and without banned words, at
the ends of the unit interval, over n-gram contexts read entry by entry and by blocks; and each
row's result independent of the rows beside it. Also the row-stable products it stands on."""
from __future__ import annotations

import numpy as np
import pytest

from models.draws import BELOW_ONE, DRAW_BLOCK, block_sums, float32_block_sums
from models.gru import GRU
from models.mixture import NgramMixture
from models.mixture_draws import MixtureDrawer, reference_draw
from models.row_stable import FEW_ROWS, batch_product, product_width, stable_product
from training.kneser_ney import KneserNey

VOCAB = 700  # eleven blocks of 64 words, the last one short
START, END, UNKNOWN = 1, 2, 0


@pytest.fixture(scope="module", params=[(), (UNKNOWN, START, END)], ids=["general", "specials"])
def drawer(request) -> MixtureDrawer:
    """A random GRU's output layer mixed with a 4-gram model of Zipf-distributed random sentences:
    frequent words are followed by many words (contexts read by blocks), rare ones by few."""
    rng = np.random.default_rng(5)
    ranks = np.arange(1, VOCAB - 2)
    zipf = 1.0 / ranks / (1.0 / ranks).sum()
    sentences = [[START, *(3 + rng.choice(ranks.size, size=int(rng.integers(2, 15)), p=zipf)).tolist(), END]
                 for _ in range(3000)]
    mixture = NgramMixture(KneserNey.fit(sentences, 4, VOCAB).table(), rnn_weight=0.35)
    model = GRU(VOCAB, 16, seed=3).for_generation()
    return MixtureDrawer(model.output, mixture, request.param)


def histories_and_states(drawer: MixtureDrawer, rows: int, seed: int):
    rng = np.random.default_rng(seed)
    histories = [[START, *rng.integers(3, 40, size=int(rng.integers(0, 5))).tolist()] for _ in range(rows)]
    hidden = rng.standard_normal((rows, 16)).astype(np.float32)
    return histories, hidden, rng


def test_both_ways_of_reading_contexts_are_exercised(drawer):
    # the one-word contexts: the last of the flat levels' columns (longest first)
    blocked, one_word = drawer._blocked, drawer.table.flat.base[-1]
    counts = np.diff(drawer.table.levels[1].offsets)
    assert 0 < np.count_nonzero(blocked.keys >= one_word) < counts.size


@pytest.mark.parametrize("banned", [[UNKNOWN, START], [UNKNOWN, START, END], [UNKNOWN, START, 5, 64, 699]])
def test_the_draw_is_the_dense_draw(drawer, banned):
    histories, hidden, rng = histories_and_states(drawer, 600, seed=len(banned))
    uniforms = rng.random(600)
    uniforms[:3] = [0.0, BELOW_ONE, 0.5]
    words, logprobs = drawer.draw(hidden, histories, uniforms, [banned] * 600)
    mixture = NgramMixture(drawer.table, drawer.rnn_weight)
    for row in range(600):
        word, logprob = reference_draw(drawer.output, mixture, hidden[row : row + 1], histories[row],
                                       float(uniforms[row]), banned)
        assert words[row] == word
        assert logprobs[row] == pytest.approx(logprob, abs=1e-6)
    assert not np.isin(words, banned).any()


def test_a_rows_draw_does_not_depend_on_the_rows_beside_it(drawer):
    """Bit for bit among batches drawn together (FEW_ROWS rows or more); the same words, and
    log-probabilities to float32 rounding, when fewer rows are drawn one by one."""
    histories, hidden, rng = histories_and_states(drawer, 40, seed=9)
    uniforms = rng.random(40)
    banned = [[UNKNOWN, START] if row % 3 else [UNKNOWN, START, END] for row in range(40)]
    words, logprobs = drawer.draw(hidden, histories, uniforms, banned)
    for first, last in ((5, 5 + FEW_ROWS), (5, 21), (3, 40)):
        part = drawer.draw(hidden[first:last], histories[first:last], uniforms[first:last], banned[first:last])
        assert part[0].tolist() == words[first:last].tolist()
        assert part[1].tobytes() == logprobs[first:last].tobytes()
    for first, last in ((0, 1), (7, 8), (30, 30 + FEW_ROWS - 1)):
        part = drawer.draw(hidden[first:last], histories[first:last], uniforms[first:last], banned[first:last])
        assert part[0].tolist() == words[first:last].tolist()
        np.testing.assert_allclose(part[1], logprobs[first:last], rtol=0, atol=1e-6)


def test_a_block_whose_mass_is_all_banned_is_never_chosen(drawer):
    """Ban every word of the first block but one, then that one too: the draw still finds a word."""
    histories, hidden, rng = histories_and_states(drawer, 50, seed=4)
    first_block = list(range(DRAW_BLOCK))
    words, _ = drawer.draw(hidden, histories, np.zeros(50), [first_block] * 50)
    assert (words >= DRAW_BLOCK).all()


@pytest.mark.parametrize("size", [VOCAB, 640, 8000])
def test_float32_block_sums_are_each_rows_own_and_close_to_float64_sums(size):
    """With a short last block and without: within 1e-6 of float64 sums, each row's bit for bit
    whatever rows are summed with it."""
    rng = np.random.default_rng(size)
    weights = np.exp(3 * rng.standard_normal((40, size))).astype(np.float32)
    sums = float32_block_sums(weights)
    np.testing.assert_allclose(sums, [block_sums(row) for row in weights.astype(np.float64)], rtol=1e-6)
    for first, last in ((0, 1), (3, 5), (10, 40)):
        assert float32_block_sums(weights[first:last]).tobytes() == sums[first:last].tobytes()


def test_a_product_that_rounds_rows_by_their_place_has_no_width_and_runs_row_by_row():
    """Where a row's last bits depend on where it stands among the others (as with some BLAS
    kernels, whatever the row count), no padding helps: the products then run row by row."""
    rng = np.random.default_rng(1)
    matrix = rng.standard_normal((20, 50)).astype(np.float32)

    def by_place(rows, m):
        out = rows @ m
        out[1::3] = np.nextafter(out[1::3], np.float32(np.inf))
        return out

    assert product_width(matrix, 16, product=by_place) is None
    rows = rng.standard_normal((12, 20)).astype(np.float32)
    alone = np.concatenate([rows[i : i + 1] @ matrix for i in range(12)])
    assert batch_product(rows, matrix, None).tobytes() == alone.tobytes()


def test_stable_products_do_not_depend_on_the_row_count():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        matrix = rng.standard_normal((100, 3000)).astype(dtype)
        width = product_width(matrix, 40)
        assert width is None or 2 <= width <= 40  # None: this BLAS rounds a row by its place (see above)
        rows = rng.standard_normal((40, 100)).astype(dtype)
        together = batch_product(rows, matrix, width)
        if width is not None:
            assert stable_product(rows, matrix, width).tobytes() == together.tobytes()
            for first, last in ((0, 1), (3, 5), (10, 40)):
                assert stable_product(rows[first:last], matrix, width).tobytes() == together[first:last].tobytes()
        for first, last in ((0, FEW_ROWS), (3, 3 + FEW_ROWS + 1), (9, 40)):  # an odd count is padded: the same numbers
            assert batch_product(rows[first:last], matrix, width).tobytes() == together[first:last].tobytes()
        one_by_one = np.stack([row @ matrix for row in rows[:FEW_ROWS - 1]])
        assert batch_product(rows[:FEW_ROWS - 1], matrix, width).tobytes() == one_by_one.tobytes()
        np.testing.assert_allclose(one_by_one, together[:FEW_ROWS - 1], rtol=1e-5, atol=1e-4)
