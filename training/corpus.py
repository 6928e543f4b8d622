"""Training text: Jane Austen's novels from Debian's r-cran-janeaustenr, or the user's own file.

The Debian package stores the novels in R's lazy-load database (``Rdata.rdb``/``.rdx``): the
``.rdx`` is a gzip-compressed serialized R list mapping each variable to an (offset, length) in
the ``.rdb``, and each ``.rdb`` block is a 4-byte big-endian length followed by zlib data holding
one serialized R object. ``rdata`` parses the serialized objects, so neither R nor root is needed.
"""
from __future__ import annotations

import csv
import gzip
import logging
import re
import shutil
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path


log = logging.getLogger(__name__)

AUSTEN_PACKAGE = "r-cran-janeaustenr"
AUSTEN_RDATA = Path("usr/lib/R/site-library/janeaustenr/data")
AUSTEN_TRAIN = ("emma", "mansfieldpark", "northangerabbey", "prideprejudice", "sensesensibility")
AUSTEN_VALID = ("persuasion",)
DEFAULT_DATA_DIR = Path("data")

_HEADING = re.compile(r"^\s*(chapter|volume)\s+([ivxlc]+|\d+)\.?\s*$", re.IGNORECASE)
_END_MARK = re.compile(r"^\s*(the end|finis)\s*$", re.IGNORECASE)


class CorpusError(Exception):
    """The corpus cannot be found, fetched or read; the message says what to do."""


@dataclass(frozen=True)
class ParagraphSource:
    """Where one split's paragraphs come from: the files whose bytes they depend on (they key the
    token cache), and a function that streams the paragraphs."""

    files: tuple[Path, ...]
    paragraphs: Callable[[], Iterable[str]]


@dataclass
class RawCorpus:
    """Paragraphs of training and validation prose (validation may be empty: split later)."""

    name: str
    train: list[str]
    valid: list[str]


# ----------------------------------------------------------------------------- fetching
def austen_dir(data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    return Path(data_dir) / AUSTEN_PACKAGE / AUSTEN_RDATA


def _apt(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", *args], cwd=cwd, capture_output=True, text=True)


def fetch_austen(data_dir: Path = DEFAULT_DATA_DIR) -> Path:
    """Download and unpack the Debian package into ``data_dir`` (no root needed); idempotent.

    ``apt-get download`` needs package lists; where the machine has none (a fresh container)
    and we are not root, a private copy of the lists is fetched into ``data_dir/apt``.
    """
    target = austen_dir(data_dir)
    if (target / "Rdata.rdx").is_file():
        return target
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise CorpusError("apt-get and dpkg-deb are needed to fetch the default corpus (a Debian system)")
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=data_dir) as tmp:
        work = Path(tmp)
        result = _apt(["download", AUSTEN_PACKAGE], work)
        if result.returncode != 0:
            log.info("apt-get download failed (%s); fetching private package lists", result.stderr.strip()[-200:])
            lists = (data_dir / "apt" / "lists").resolve()
            cache = (data_dir / "apt" / "cache").resolve()
            (lists / "partial").mkdir(parents=True, exist_ok=True)
            (cache / "archives" / "partial").mkdir(parents=True, exist_ok=True)
            private = [
                f"-oDir::State::Lists={lists}",
                f"-oDir::Cache={cache}",
                "-oDebug::NoLocking=1",
                "-oAPT::Sandbox::User=root" if _is_root() else "-oAPT::Sandbox::User=" + _user(),
            ]
            update = _apt([*private, "update"], work)
            result = _apt([*private, "download", AUSTEN_PACKAGE], work)
            if result.returncode != 0:
                raise CorpusError(
                    f"could not download {AUSTEN_PACKAGE} with apt-get: "
                    f"{(result.stderr or update.stderr).strip()[-400:]}"
                )
        debs = list(work.glob(f"{AUSTEN_PACKAGE}_*.deb"))
        if not debs:
            raise CorpusError(f"apt-get download produced no {AUSTEN_PACKAGE} package")
        unpack = data_dir / AUSTEN_PACKAGE
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(unpack)], check=True)
    if not (target / "Rdata.rdx").is_file():
        raise CorpusError(f"{AUSTEN_PACKAGE} unpacked but {target / 'Rdata.rdx'} is missing")
    log.info("default corpus unpacked into %s", target)
    return target


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def _user() -> str:
    import getpass

    return getpass.getuser()


# ------------------------------------------------------------------------------ reading
def read_austen_books(rdata_dir: Path) -> dict[str, list[str]]:
    """Each novel's lines, by the package's variable name (e.g. ``persuasion``)."""
    import warnings

    import rdata

    warnings.filterwarnings("ignore", message="Unknown file type", module="rdata")
    index_obj = rdata.parser.parse_data(gzip.decompress((rdata_dir / "Rdata.rdx").read_bytes()))
    index = rdata.conversion.convert(index_obj)
    blob = (rdata_dir / "Rdata.rdb").read_bytes()
    books = {}
    for name, (offset, length) in index["variables"].items():
        block = blob[int(offset) : int(offset) + int(length)]
        parsed = rdata.parser.parse_data(zlib.decompress(block[4:]))
        books[str(name)] = [str(line) for line in rdata.conversion.convert(parsed)]
    return books


def novel_paragraphs(lines: list[str]) -> list[str]:
    """Prose paragraphs of a novel: front matter, chapter headings, end marks and italics removed."""
    first_heading = next((i for i, line in enumerate(lines) if _HEADING.match(line)), 0)
    paragraphs, current = [], []
    for line in lines[first_heading:]:
        if _HEADING.match(line) or _END_MARK.match(line) or not line.strip():
            if current:
                paragraphs.append(" ".join(current))
                current = []
            continue
        current.append(line.replace("_", "").strip())
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def load_austen(data_dir: Path = DEFAULT_DATA_DIR) -> RawCorpus:
    """The five training novels and Persuasion for validation, fetched on first use."""
    books = read_austen_books(fetch_austen(data_dir))
    missing = [n for n in AUSTEN_TRAIN + AUSTEN_VALID if n not in books]
    if missing:
        raise CorpusError(f"the {AUSTEN_PACKAGE} data lacks {', '.join(missing)}")
    train = [p for name in AUSTEN_TRAIN for p in novel_paragraphs(books[name])]
    valid = [p for name in AUSTEN_VALID for p in novel_paragraphs(books[name])]
    return RawCorpus("austen", train, valid)


# csv's own limit is 131,072 characters a cell; a corpus may hold whole documents in one, so
# the reader allows this many and names the file and line past it
MAX_CSV_CELL_CHARS = 16 * 2**20
# control characters (NUL, escape, C1 codes...) other than tab, newline and carriage return
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def without_controls(text: str) -> str:
    """``text`` with control characters removed; those that separate words (form feed, vertical
    tab, the information separators) become a space, so they never join two words."""
    return _CONTROL.sub(lambda match: " " if match.group().isspace() else "", text)


def _csv_first_cells(path: Path) -> Iterator[str]:
    """The first cell of each row, read as the csv module documents (a file opened with
    ``newline=''``, so a quoted cell keeps its line breaks)."""
    previous_limit = csv.field_size_limit(MAX_CSV_CELL_CHARS)
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            try:
                for row in reader:
                    if row and row[0].strip():
                        yield row[0]
            except csv.Error as exc:
                if "field larger than field limit" in str(exc):
                    raise CorpusError(f"{path}: line {reader.line_num}: a cell is longer than "
                                      f"{MAX_CSV_CELL_CHARS:,} characters") from None
                raise CorpusError(f"{path}: line {reader.line_num}: not readable as CSV ({exc})") from None
    finally:
        csv.field_size_limit(previous_limit)


def _csv_paragraphs(path: Path) -> Iterator[str]:
    """Each non-empty first cell, control characters removed and white space folded; a first cell
    that is a single bare word (such as ``body`` or ``text``) is taken as a header and skipped."""
    for number, cell in enumerate(_csv_first_cells(path)):
        cell = without_controls(cell)
        if number == 0 and re.fullmatch(r"[A-Za-z_]+", cell.strip()):
            continue
        if cell.strip():
            yield " ".join(cell.split())


def _text_paragraphs(path: Path) -> Iterator[str]:
    """Blank-line separated blocks, white space folded, read a line at a time: the paragraphs of
    ``models.text.split_paragraphs`` without holding the file in memory."""
    block: list[str] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            line = without_controls(line)
            if line.strip():
                block.append(line)
            elif block:
                yield " ".join(" ".join(block).split())
                block = []
    if block:
        yield " ".join(" ".join(block).split())


def paragraph_stream(path: Path) -> Iterator[str]:
    """Paragraphs of a user file, one at a time: blank-line separated prose (.txt) or the first
    column (.csv), control characters removed. Unreadable text is a CorpusError naming the file;
    a file without any text yields nothing."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")
    try:
        yield from _csv_paragraphs(path) if path.suffix.lower() == ".csv" else _text_paragraphs(path)
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text ({exc})") from None


def read_paragraphs(path: Path) -> list[str]:
    """All of ``paragraph_stream``; a file without any text is a CorpusError."""
    paragraphs = list(paragraph_stream(path))
    if not paragraphs:
        raise CorpusError(f"{path}: holds no text")
    return paragraphs


def load_corpus(corpus: str, validation: str | None = None, data_dir: Path = DEFAULT_DATA_DIR) -> RawCorpus:
    """``austen`` or a path to a .txt/.csv file; ``validation`` names an optional held-out file."""
    if corpus == "austen":
        raw = load_austen(data_dir)
        if validation:
            raw.valid = read_paragraphs(Path(validation))
        return raw
    valid = read_paragraphs(Path(validation)) if validation else []
    return RawCorpus(str(corpus), read_paragraphs(Path(corpus)), valid)


def _some_text(path: Path) -> Iterator[str]:
    """``paragraph_stream``, with a CorpusError at the end if it held no text."""
    empty = True
    for paragraph in paragraph_stream(path):
        empty = False
        yield paragraph
    if empty:
        raise CorpusError(f"{path}: holds no text")


def corpus_sources(corpus: str, validation: str | None = None, data_dir: Path = DEFAULT_DATA_DIR,
                   ) -> tuple[ParagraphSource, ParagraphSource | None]:
    """``load_corpus``'s splits as streams: (training, validation or None to hold out later)."""
    def user_file(name: str) -> ParagraphSource:
        path = Path(name)
        if not path.is_file():
            raise CorpusError(f"{path}: no such file")
        return ParagraphSource((path,), lambda: _some_text(path))

    valid = user_file(validation) if validation else None
    if corpus != "austen":
        return user_file(corpus), valid
    folder = fetch_austen(data_dir)
    files = (folder / "Rdata.rdx", folder / "Rdata.rdb")
    train = ParagraphSource(files, lambda: load_austen(data_dir).train)
    return train, valid or ParagraphSource(files, lambda: load_austen(data_dir).valid)
