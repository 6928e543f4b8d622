"""The RNN's part of a mixture draw (``models.mixture_draws``), one kind per output layer: which
blocks the draw chooses among (``models.draw_blocks``), the RNN's mass of each block, and its
probabilities of the words of each row's chosen block. The n-gram model's parts are the same
for every layer; ``rnn_part`` is the one place that says which part a layer has.

* Full softmax: blocks of DRAW_BLOCK words; their masses from one pass of float32 exponentials
  over all of a row's logits (``float32_block_sums``), divided by the row's sum.
* Class softmax: the blocks are its classes, and a class's mass is its probability, from one
  small product with V_class: V itself is read only for the chosen classes' words.

Both give masses and probabilities times the RNN's weight in the mixture, each row's from that
row alone.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from models.draw_blocks import ChosenBlocks, DrawBlocks, every_row
from models.draws import float32_block_sums
from models.row_stable import FEW_ROWS
from models.softmax import ClassSoftmax, FullSoftmax, OutputLayer

# Below this many rows the class layer's mixture draw runs the dense draw row by row: never. Its
# block-wise draw is row-stable at any row count (row-by-row products only), and the dense draw
# scores every word (a full product with V); one row is drawn by ``MixtureDrawer._one_row``.
CLASS_DENSE_BELOW = 1


class RnnPart(Protocol):
    """What a mixture draw asks of the RNN (``rnn_part``)."""

    blocks: DrawBlocks
    specials: np.ndarray  # the words whose probabilities the draw takes out of the blocks' masses cheaply
    # True: each special is alone in its block, and its probability is its block's mass, bit for
    # bit; False: ``masses`` appends the specials' probabilities after the blocks'
    alone: bool
    dense_below: int  # below this many rows the draw runs the dense draw, row by row

    def masses(self, hidden: np.ndarray) -> tuple[object, np.ndarray]:
        """This step's numbers for ``values``, and each row's RNN mass of each block (then its
        probability of each special word unless ``alone``), times the RNN's weight (B x (blocks
        + specials) or B x blocks)."""
        ...

    def add_values(self, step: object, chosen: ChosenBlocks, values: np.ndarray) -> None:
        """Add the RNN's probability of each word of each row's chosen block times its weight to
        ``values``, laid out as ``chosen`` says (anything in the cells past a block's end)."""
        ...


class FullSoftmaxPart:
    """Blocks of DRAW_BLOCK words, summed from float32 exponentials of every logit."""

    dense_below = FEW_ROWS
    alone = False

    def __init__(self, output: FullSoftmax, weight: float, specials: Sequence[int]):
        self.output = output
        self.weight = weight
        self.blocks = DrawBlocks.evenly(output.vocab_size)
        self.specials = np.asarray(specials, dtype=np.int64)

    def masses(self, hidden: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        exps = self.output.shifted_logits(hidden)
        np.exp(exps, out=exps)  # float32: plenty for a draw
        count = self.blocks.count
        sums = np.empty((exps.shape[0], count + self.specials.size))
        float32_block_sums(exps, out=sums[:, :count])
        sums[:, count:] = exps[:, self.specials]  # float32 into float64: exact
        scale = self.weight / np.add.reduce(sums[:, :count], axis=1)  # w / Z
        sums *= scale[:, None]
        return (exps, scale), sums

    def add_values(self, step: tuple[np.ndarray, np.ndarray], chosen: ChosenBlocks, values: np.ndarray) -> None:
        exps, scale = step
        rows, size = exps.shape
        values += exps.take(chosen.words + every_row(rows)[:, None] * size) * scale[:, None]


class ClassSoftmaxPart:
    """The classes as blocks: their masses the class probabilities, the chosen classes' words
    scored alone (``ClassSoftmax.word_probabilities``). A special word must be alone in its class
    (as ``WordClasses`` makes the special tokens) for its probability to be its class's; others
    are left to the draw's general way of banning words."""

    dense_below = CLASS_DENSE_BELOW
    alone = True

    def __init__(self, output: ClassSoftmax, weight: float, specials: Sequence[int]):
        self.output = output
        self.weight = weight
        classes = output.classes
        self.blocks = DrawBlocks.ranges(classes.starts)
        specials = np.asarray(specials, dtype=np.int64)
        self.specials = specials[np.diff(classes.starts)[classes.word_class[specials]] == 1]

    def masses(self, hidden: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
        probs = self.output.class_probabilities(hidden)
        probs *= self.weight
        return (hidden, probs), probs

    def add_values(self, step: tuple[np.ndarray, np.ndarray], chosen: ChosenBlocks, values: np.ndarray) -> None:
        hidden, probs = step
        class_probs = probs[every_row(chosen.blocks.size), chosen.blocks]
        chosen.add_to_words(values, self.output.word_probabilities(hidden, chosen.blocks, class_probs))


def rnn_part(output: OutputLayer, weight: float, specials: Sequence[int]) -> FullSoftmaxPart | ClassSoftmaxPart:
    """The part of ``output`` (a frozen layer: ``RecurrentLM.for_generation``) weighted by
    ``weight``; ``specials``: the words most draws ban, whose probabilities it reads cheaply."""
    if isinstance(output, ClassSoftmax):
        return ClassSoftmaxPart(output, weight, specials)
    if isinstance(output, FullSoftmax):
        return FullSoftmaxPart(output, weight, specials)
    raise TypeError(f"no mixture draw for the {output.KIND!r} output layer")
