"""The recurrent cells a model can have, by the name that model files and ``--cell`` use."""
from __future__ import annotations

from models.gru import GRU
from models.lstm import LSTM
from models.recurrent_lm import RecurrentLM
from models.rnn import RNN

CELLS: dict[str, type[RecurrentLM]] = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
FILE_DEFAULT_CELL = "rnn"  # what a model file without a "cell" entry holds (files from before the GRU)
TRAINING_DEFAULT_CELL = "gru"  # measured best within the 10-minute default run (README)


def cell_class(name: str) -> type[RecurrentLM]:
    """The model class of a cell name; ValueError naming the known cells for any other."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r} (known: {', '.join(CELLS)})")
    return CELLS[name]
