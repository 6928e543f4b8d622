"""The batched mixture draw (models/mixture_draws.py) against the dense draw written for clarity
(``reference_draw``), over both output layers (the full softmax's blocks of DRAW_BLOCK words, the
class softmax's classes, one of them several chunks wide): the same words and log-probabilities,
with and without banned words, at the ends of the unit interval, over n-gram contexts read entry
by entry and by blocks; and each row's result independent of the rows beside it. Also the
row-stable products it stands on, and the choice of a word within blocks of any width."""
from __future__ import annotations

import numpy as np
import pytest

from models.draw_blocks import DrawBlocks, first_above
from models.draws import BELOW_ONE, DRAW_BLOCK, block_sums, float32_block_sums
from models.gru import GRU
from models.mixture import NgramMixture
from models.mixture_draws import MixtureDrawer, reference_draw
from models.row_stable import FEW_ROWS, batch_product, product_width, rowwise_product, stable_product
from models.word_classes import WordClasses
from training.kneser_ney import KneserNey

VOCAB = 700  # eleven blocks of 64 words, the last one short
START, END, UNKNOWN = 1, 2, 0
CLASSES = 16  # the rarest words share a class of 265, five chunks of 64; three more span two or three


@pytest.fixture(scope="module")
def sentences() -> list[list[int]]:
    """Zipf-distributed random sentences: frequent words are followed by many words (contexts
    read by blocks), rare ones by few."""
    rng = np.random.default_rng(5)
    ranks = np.arange(1, VOCAB - 2)
    zipf = 1.0 / ranks / (1.0 / ranks).sum()
    return [[START, *(3 + rng.choice(ranks.size, size=int(rng.integers(2, 15)), p=zipf)).tolist(), END]
            for _ in range(3000)]


@pytest.fixture(scope="module", params=[("full", ()), ("full", (UNKNOWN, START, END)),
                                        ("class", ()), ("class", (UNKNOWN, START, END))],
                ids=["full-general", "full-specials", "class-general", "class-specials"])
def drawer(request, sentences) -> MixtureDrawer:
    """A random GRU's output layer, full or by frequency classes of the sentences' words, mixed
    with a 4-gram model of them."""
    return make_drawer(sentences, *request.param)


@pytest.fixture(scope="module", params=[(), (UNKNOWN, START, END)], ids=["general", "specials"])
def class_drawer(request, sentences) -> MixtureDrawer:
    return make_drawer(sentences, "class", request.param)


def make_drawer(sentences: list[list[int]], layer: str, specials: tuple[int, ...]) -> MixtureDrawer:
    mixture = NgramMixture(KneserNey.fit(sentences, 4, VOCAB).table(), rnn_weight=0.35)
    classes = None
    if layer == "class":
        classes = WordClasses.from_counts(np.bincount(np.concatenate(sentences), minlength=VOCAB), CLASSES)
    model = GRU(VOCAB, 16, seed=3, classes=classes).for_generation()
    return MixtureDrawer(model.output, mixture, specials)


def widest_class(drawer: MixtureDrawer) -> range:
    """The words of the widest block of a class-softmax drawer."""
    starts = drawer.output.classes.starts
    k = int(np.argmax(np.diff(starts)))
    return range(int(starts[k]), int(starts[k + 1]))


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
    # every context is read one way: by blocks (its row here) or entry by entry (all its entries)
    rows, entries = blocked.row_of, np.diff(drawer.table.flat.offsets)
    assert rows[blocked.keys].tolist() == list(range(blocked.keys.size))
    assert np.count_nonzero(rows != blocked.none) == blocked.keys.size
    assert drawer._entry_counts.tolist() == np.where(rows == blocked.none, entries, 0).tolist()
    assert (entries[rows == blocked.none] < drawer._blocks.count).all()


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
    for row in range(150):  # a row drawn alone (the class layer's one-row draw; the dense one for the full softmax)
        alone = drawer.draw(hidden[row : row + 1], histories[row : row + 1], uniforms[row : row + 1], [banned])
        assert alone[0][0] == words[row]
        assert alone[1][0] == pytest.approx(logprobs[row], abs=1e-6)
    if drawer.output.classes is not None:  # rows drew from the widest class, its chunks after the first too
        wide = widest_class(drawer)
        assert len(wide) > 4 * DRAW_BLOCK
        assert np.count_nonzero((words >= wide.start + DRAW_BLOCK) & (words < wide.stop)) >= 3


def test_banned_specials_alone_in_their_classes_are_never_drawn(class_drawer):
    """The special tokens have a class each (the first ones): banned, their classes' masses are
    taken out whole, also where the uniform number falls in or next to them (the lowest numbers);
    the other classes' numbers are untouched, so the dense draw's words and log-probabilities."""
    drawer = class_drawer
    histories, hidden, rng = histories_and_states(drawer, 300, seed=11)
    uniforms = np.concatenate([[0.0], rng.random(149) * 0.02, rng.random(150)])
    for banned in ([UNKNOWN, START], [UNKNOWN, START, END], [END]):
        words, logprobs = drawer.draw(hidden, histories, uniforms, [banned] * 300)
        for row in range(300):
            word, logprob = reference_draw(drawer.output, NgramMixture(drawer.table, drawer.rnn_weight),
                                           hidden[row : row + 1], histories[row], float(uniforms[row]), banned)
            assert words[row] == word
            assert logprobs[row] == pytest.approx(logprob, abs=1e-6)
        assert not np.isin(words, banned).any()
    assert drawer._rnn.alone and drawer._columns.size == 0


def test_the_class_softmaxs_blocks_are_its_classes(drawer):
    """And the full softmax's are DRAW_BLOCK words; the special tokens, alone in their classes,
    are read from the masses (the other banned words by the general way)."""
    blocks = drawer._blocks
    if drawer.output.classes is None:
        assert blocks.even and blocks.starts.tolist() == [*range(0, VOCAB, DRAW_BLOCK), VOCAB]
    else:
        assert not blocks.even and blocks.starts.tolist() == drawer.output.classes.starts.tolist()
    assert drawer._specials.size in (0, 3)


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


def test_a_row_of_a_wide_class_draws_as_alone_amid_narrow_ones(class_drawer):
    """The class layer draws from one row on by blocks (the dense draw only where a block's mass
    was all banned): a row that picks the widest class gets the same bits alone, amid rows of
    one-chunk classes, and amid other wide rows."""
    drawer = class_drawer
    histories, hidden, rng = histories_and_states(drawer, 300, seed=21)
    uniforms = rng.random(300)
    banned = [[UNKNOWN, START]] * 300
    words, logprobs = drawer.draw(hidden, histories, uniforms, banned)
    wide = widest_class(drawer)
    in_wide = np.flatnonzero((words >= wide.start) & (words < wide.stop))
    classes = drawer.output.classes
    narrow = np.flatnonzero(np.diff(classes.starts)[classes.word_class[words]] <= DRAW_BLOCK)
    assert in_wide.size >= 2 and narrow.size >= 10
    for rows in ([in_wide[0]], [*narrow[:9], in_wide[0]], [in_wide[1], *narrow[:3], in_wide[0]], in_wide):
        rows = np.array(rows)
        part = drawer.draw(hidden[rows], [histories[r] for r in rows], uniforms[rows], [banned[r] for r in rows])
        assert part[0].tolist() == words[rows].tolist()
        assert part[1].tobytes() == logprobs[rows].tobytes()


@pytest.mark.parametrize("seed", range(4))
def test_a_word_is_chosen_in_blocks_of_any_width_as_by_the_running_sum(seed):
    """``ChosenBlocks.pick`` over blocks of 1 to 300 words, one chunk or several, some values 0
    (banned words, a chunk of zeros): the word where the running sum of the row's block passes
    the offset, as a running sum over the block alone finds it."""
    rng = np.random.default_rng(seed)
    widths = [1, 3, 64, 65, 300, 7, 128, 129, 2]
    blocks = DrawBlocks.ranges(np.concatenate([[0], np.cumsum(widths)]))
    if seed == 3:  # one chunk each: the B x DRAW_BLOCK layout
        chosen_blocks = np.array([2, 0, 1, 5, 8, 2])
    else:
        chosen_blocks = rng.integers(0, len(widths), 40)
        chosen_blocks[:3] = [4, 0, 4]
    chosen = blocks.chosen(chosen_blocks)
    assert (chosen.chunks is None) == (seed == 3)
    weights = rng.exponential(size=blocks.size) * (rng.random(blocks.size) > 0.2)
    weights[blocks.starts[4] : blocks.starts[4] + DRAW_BLOCK] = 0.0  # the wide block's first chunk: all banned
    values = np.zeros(chosen.shape)
    values.ravel()[chosen.word_cells()] = np.concatenate([weights[blocks.starts[b] : blocks.starts[b + 1]]
                                                          for b in chosen_blocks])
    uniforms = rng.random(chosen_blocks.size)
    uniforms[:2] = [0.0, BELOW_ONE]
    totals = np.array([weights[blocks.starts[b] : blocks.starts[b + 1]].sum() for b in chosen_blocks])
    cells, inner = chosen.pick(values, uniforms * totals)
    for row, block in enumerate(chosen_blocks.tolist()):
        own = weights[blocks.starts[block] : blocks.starts[block + 1]]
        cdf = np.cumsum(own)
        if cdf[-1] > 0:
            at = int(np.searchsorted(cdf, min(uniforms[row] * totals[row], cdf[-1] * BELOW_ONE), side="right"))
            assert cells[row] - chosen.shift[row] == blocks.starts[block] + at
            assert own[at] > 0 and inner[row] > 0
        else:
            assert inner[row] <= 0


@pytest.mark.parametrize("widths", [[64, 64, 64, 30], [64, 64, 64, 64], [1, 3, 64, 65, 300, 7]],
                         ids=["even-short-last", "even-full", "ranges"])
def test_numbers_per_word_land_in_their_words_cells(widths):
    """``ChosenBlocks.add_to_words`` adds a number per word, row after row in word order, where
    ``word_cells`` says the words are, in every layout (no padding at all, one chunk, several)."""
    rng = np.random.default_rng(len(widths))
    starts = np.concatenate([[0], np.cumsum(widths)])
    blocks = DrawBlocks.evenly(int(starts[-1])) if widths[-1] != 64 and len(widths) == 4 else DrawBlocks.ranges(starts)
    for chosen_blocks in (np.array([3, 0, 1]), np.array([2, 2]), rng.integers(0, len(widths), 9)):
        chosen = blocks.chosen(chosen_blocks)
        per_word = rng.random(int(np.diff(starts)[chosen_blocks].sum()))
        values = rng.random(chosen.shape)
        expected = values.copy()
        expected.ravel()[chosen.word_cells()] += per_word
        chosen.add_to_words(values, per_word)
        assert values.tobytes() == expected.tobytes()


@pytest.mark.parametrize("seed", range(3))
def test_the_first_running_sum_above_an_offset_is_the_count_of_those_not_above(seed):
    """``first_above`` over running sums with flat stretches (zeros), offsets on a sum, past the
    total and at 0, all zero rows: how many sums are <= the offset, at most the row's last column."""
    rng = np.random.default_rng(seed)
    numbers = rng.exponential(size=(50, 12)) * (rng.random((50, 12)) > 0.4)
    numbers[:3] = 0.0
    running = numbers.cumsum(axis=1)
    offsets = rng.random(50) * running[:, -1] * 1.2
    offsets[3:6] = running[3:6, 4]  # exactly on a sum
    offsets[6] = 0.0
    last = rng.integers(0, 12, 50)
    below = np.add.reduce(running <= offsets[:, None], axis=1)
    assert first_above(running, offsets).tolist() == np.minimum(below, 11).tolist()
    assert first_above(running, offsets, last).tolist() == np.minimum(below, last).tolist()


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


def test_a_product_that_rounds_by_the_row_count_is_padded_to_the_count_from_which_it_does_not():
    rng = np.random.default_rng(2)
    matrix = rng.standard_normal((20, 50)).astype(np.float32)

    def by_count(rows, m):
        out = rowwise_product(rows, m)  # each row its own, so only the count below 7 changes a row
        return np.nextafter(out, np.float32(np.inf)) if rows.shape[0] < 7 else out

    assert product_width(matrix, 16, product=by_count) == 7


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
