"""Build ``lm_eval_emergence/data/corpus/sentences.txt.gz`` from public-domain novels.

The texts come from two Debian (bookworm, main) binary packages, both MIT-licensed R data
packages whose payload is public-domain Project Gutenberg text:

* ``r-cran-janeaustenr`` 1.0.0-1: Jane Austen's six completed novels.
* ``r-cran-tokenizers`` 0.3.0-1: Herman Melville, *Moby Dick; or The Whale*.

The novels sit in R lazy-load databases (``data/Rdata.rdx`` + ``data/Rdata.rdb``) inside each
``.deb``; this script reads the ``.deb`` (ar + tar) and the R serialisation with the standard
library only, so neither R nor dpkg is needed. Download the packages into /tmp and run::

    mkdir -p /tmp/corpus-src && cd /tmp/corpus-src && apt-get update \\
        && apt-get download r-cran-janeaustenr=1.0.0-1 r-cran-tokenizers=0.3.0-1
    python scripts/build_corpus.py /tmp/corpus-src/r-cran-janeaustenr_1.0.0-1_all.deb \\
        /tmp/corpus-src/r-cran-tokenizers_0.3.0-1_amd64.deb

The output is one sentence per line (UTF-8, gzip with mtime 0), byte-identical on rerun.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import lzma
import re
import struct
import sys
import tarfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "lm_eval_emergence" / "data" / "corpus" / "sentences.txt.gz"

# (R package, object name in its data/ lazy-load DB, title, author, sentences kept)
BOOKS: list[tuple[str, str, str, str, int]] = [
    ("janeaustenr", "sensesensibility", "Sense and Sensibility", "Jane Austen", 2500),
    ("janeaustenr", "prideprejudice", "Pride and Prejudice", "Jane Austen", 2500),
    ("janeaustenr", "mansfieldpark", "Mansfield Park", "Jane Austen", 2500),
    ("janeaustenr", "emma", "Emma", "Jane Austen", 2500),
    ("janeaustenr", "northangerabbey", "Northanger Abbey", "Jane Austen", 2500),
    ("janeaustenr", "persuasion", "Persuasion", "Jane Austen", 2500),
    ("tokenizers", "mobydick", "Moby Dick; or The Whale", "Herman Melville", 8000),
]

MIN_WORDS = 6
ABBREVIATIONS = frozenset(
    ["Mr.", "Mrs.", "Ms.", "Dr.", "St.", "Messrs.", "Mme.", "Capt.", "Col.", "Gen."]
    + ["Rev.", "Esq.", "Jr.", "Sr.", "Lt.", "Sgt."]
)
_BOUNDARY = re.compile(r"([.!?])([\"')\]]*)\s+(?=[\"'(\[]*[A-Z])")
_LAST_TOKEN = re.compile(r"\S+$")
_GOOD_SENTENCE = re.compile(r"[A-Z][^\"()\[\]{}_*#<>|/\\0-9]*[a-z,;:'-][.!?]")
_HEADING = re.compile(r"(CHAPTER|Chapter|VOLUME|Volume|BOOK|Book|Epilogue|EPILOGUE)\b")


# --------------------------------------------------------------------------- .deb reading


def deb_members(deb: Path) -> dict[str, bytes]:
    """Return the regular files of a .deb's data.tar.* keyed by path (no leading './')."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb}: not an ar archive")
    pos = 8
    while pos + 60 <= len(raw):
        header = raw[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size % 2)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                out = {}
                for member in tar.getmembers():
                    if member.isfile():
                        fh = tar.extractfile(member)
                        assert fh is not None
                        out[member.name.removeprefix("./")] = fh.read()
                return out
    raise ValueError(f"{deb}: no data.tar member")


# --------------------------------------------------------------------------- R unserialise


@dataclass
class RVec:
    """An R vector: its elements and its attributes (e.g. ``names``)."""

    values: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)


class _Unserializer:
    """Reader for R's XDR serialisation (format 2 or 3), limited to plain data objects."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.refs: list[Any] = []

    def _int(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def _length(self) -> int:
        n = self._int()
        if n == -1:  # long vector
            hi, lo = self._int(), self._int()
            n = (hi << 32) + lo
        return n

    def read(self) -> Any:
        """Parse the header and return the top-level object."""
        if self.data[:2] != b"X\n":
            raise ValueError("not an XDR R serialisation")
        self.pos = 2
        version = self._int()
        self._int()  # writer R version
        self._int()  # minimal reader R version
        if version == 3:
            self.pos += 4 + self._int()  # native encoding name
        return self._item()

    def _pairlist_attrs(self) -> dict[str, Any]:
        attrs = self._item()
        return dict(attrs) if attrs else {}

    def _item(self) -> Any:
        flags = self._int()
        sexp = flags & 0xFF
        has_attr, has_tag = flags & (1 << 9), flags & (1 << 10)
        if sexp == 254:  # NILVALUE_SXP
            return None
        if sexp == 255:  # REFSXP
            index = flags >> 8 or self._int()
            return self.refs[index - 1]
        if sexp == 1:  # SYMSXP
            name = self._item()
            self.refs.append(name)
            return name
        if sexp == 2:  # LISTSXP (pairlist) -> list of (tag, value)
            if has_attr:
                self._item()
            tag = self._item() if has_tag else None
            head = [(tag, self._item())]
            tail = self._item()
            return head + (tail or [])
        if sexp == 9:  # CHARSXP
            n = self._int()
            if n == -1:
                return None
            raw = self.data[self.pos : self.pos + n]
            self.pos += n
            return raw.decode("latin-1" if (flags >> 12) & 4 else "utf-8")
        if sexp in (10, 13):  # LGLSXP, INTSXP
            n = self._length()
            values: list[Any] = list(struct.unpack_from(f">{n}i", self.data, self.pos))
            self.pos += 4 * n
        elif sexp == 14:  # REALSXP
            n = self._length()
            values = list(struct.unpack_from(f">{n}d", self.data, self.pos))
            self.pos += 8 * n
        elif sexp in (16, 19, 20):  # STRSXP, VECSXP, EXPRSXP
            values = [self._item() for _ in range(self._length())]
        else:
            raise ValueError(f"unsupported R SEXP type {sexp} at byte {self.pos}")
        return RVec(values, self._pairlist_attrs() if has_attr else {})


def unserialize(data: bytes) -> Any:
    """Decode one R-serialised object."""
    return _Unserializer(data).read()


def lazyload_objects(rdx: bytes, rdb: bytes) -> dict[str, Any]:
    """Return every variable of an R lazy-load database (``Rdata.rdx`` + ``Rdata.rdb``)."""
    index = unserialize(gzip.decompress(rdx))
    fields = dict(zip(index.attrs["names"].values, index.values, strict=True))
    variables: RVec = fields["variables"]
    compressed = fields["compressed"].values[0]
    out = {}
    for name, where in zip(variables.attrs["names"].values, variables.values, strict=True):
        offset, length = (int(x) for x in where.values)
        blob = rdb[offset : offset + length]
        if compressed == 1:
            payload = zlib.decompress(blob[4:])
        else:
            kind, body = blob[4:5], blob[5:]
            payload = {
                b"Z": zlib.decompress,
                b"2": bz2.decompress,
                b"X": lzma.decompress,
                b"0": bytes,
            }[kind](body)
        out[name] = unserialize(payload)
    return out


# --------------------------------------------------------------------------- text handling


def book_text(obj: RVec, name: str) -> str:
    """Join an R character vector into one text and cut any Project Gutenberg wrapper."""
    text = "\n".join(line or "" for line in obj.values).replace("\r\n", "\n")
    text = text.lstrip("\ufeff")
    if "Gutenberg" in text:  # Moby Dick keeps the PG header, notes and licence: cut them
        start = text.find("CHAPTER 1. Loomings.")
        end = text.find("End of Project Gutenberg")
        if start < 0 or end < start:
            raise ValueError(f"{name}: Project Gutenberg wrapper markers not found")
        text = text[start:end]
        if "Gutenberg" in text:
            raise ValueError(f"{name}: Project Gutenberg text left after stripping")
    return text


def split_sentences(paragraph: str) -> list[str]:
    """Split a whitespace-normalised paragraph after . ! ? followed by a capital."""
    sentences, start = [], 0
    for match in _BOUNDARY.finditer(paragraph):
        token = _LAST_TOKEN.search(paragraph, 0, match.start(1) + 1)
        word = token.group(0).lstrip("\"'(") if token else ""
        if word in ABBREVIATIONS or re.fullmatch(r"[A-Z]\.", word):
            continue
        sentences.append(paragraph[start : match.end(2)])
        start = match.end()
    sentences.append(paragraph[start:])
    return sentences


def keep(sentence: str) -> bool:
    """True for a clean narrative sentence: capitalised, terminated, no quotes or digits."""
    if len(sentence.split()) < MIN_WORDS or not _GOOD_SENTENCE.fullmatch(sentence):
        return False
    letters = [c for c in sentence if c.isalpha()]
    return sum(c.isupper() for c in letters) * 3 < len(letters)


def book_sentences(text: str) -> list[str]:
    """All kept sentences of one book, in reading order."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        paragraph = " ".join(block.replace("_", "").split())  # drop _emphasis_ marks
        if not paragraph or _HEADING.match(paragraph):
            continue
        out.extend(s for s in split_sentences(paragraph) if keep(s))
    return out


def spread(items: list[str], k: int) -> list[str]:
    """At most ``k`` items evenly spaced over ``items``, order kept."""
    n = len(items)
    if n <= k:
        return items
    return [items[(i * n) // k] for i in range(k)]


def build(debs: list[Path]) -> tuple[list[str], list[str]]:
    """Return (sentences, report lines) for the given .deb files."""
    objects: dict[str, dict[str, Any]] = {}
    report = []
    for deb in debs:
        members = deb_members(deb)
        report.append(f"{deb.name} sha256={hashlib.sha256(deb.read_bytes()).hexdigest()}")
        for path in members:
            match = re.fullmatch(r"usr/lib/R/site-library/([^/]+)/data/Rdata\.rdx", path)
            if match:
                base = path.removesuffix(".rdx")
                objects[match.group(1)] = lazyload_objects(members[path], members[base + ".rdb"])
    seen: set[str] = set()
    sentences = []
    for package, name, title, author, cap in BOOKS:
        if package not in objects:
            raise SystemExit(f"no .deb with R package {package!r} given")
        unique = []
        for sentence in book_sentences(book_text(objects[package][name], name)):
            if sentence not in seen:
                seen.add(sentence)
                unique.append(sentence)
        chosen = spread(unique, cap)
        report.append(f"{title} ({author}): {len(unique)} candidates, {len(chosen)} kept")
        sentences.extend(chosen)
    return sentences, report


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("debs", nargs="+", type=Path, help="r-cran-janeaustenr/tokenizers .deb")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    sentences, report = build(args.debs)
    payload = "".join(s + "\n" for s in sentences).encode("utf-8")
    buffer = io.BytesIO()
    # GzipFile (not gzip.compress) keeps the header fixed: no name, mtime 0, OS byte 255.
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as gz:
        gz.write(payload)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(buffer.getvalue())
    for line in report:
        print(line, file=sys.stderr)
    size = args.out.stat().st_size
    print(f"wrote {len(sentences)} sentences, {size} bytes -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
