"""A person's own material for a fine-tune: uploaded files (or one zip of them) read with limits, each taken or
refused with its reason, described (characters, or tunes, notes, meters and keys), split into training and
validation, and written as a corpus folder that ``train --data`` reads.

Strangers' files are read in memory with limits on their number, their sizes and the unpacked total of a
zip; a zip's declared sizes are checked first and the bytes are counted again while they are read, since
a zip may lie about them."""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from genmodels.core.errors import DataError, MidiError
from genmodels.core.registry import get_domain
from genmodels.music import read_midi, write_midi
from genmodels.music.scales import key_name
from genmodels.music.types import Melody

MAX_FILES = 300
MAX_FILE_BYTES = 4_000_000
MAX_TOTAL_BYTES = 40_000_000
MAX_SCORE_BYTES = 1_000_000  # ABC and MusicXML are parsed by music21: slower per byte than MIDI
TEXT_SUFFIXES = (".txt",)
MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = {".abc": "abc", ".musicxml": "musicxml", ".xml": "musicxml"}
VALID_SHARE = 0.1  # of each text, or of the tunes, kept out of training to measure it and stop early


def is_text_domain(domain: str) -> bool:
    """Whether a domain learns from text (measured in characters) rather than tunes."""
    return get_domain(domain).metric_unit == "char"


class MaterialError(DataError):
    """Nothing usable was uploaded, or the upload as a whole breaks a limit (the message says which)."""


@dataclass
class Material:
    """What was read: texts or tunes taken, files refused with their reasons."""

    domain: str
    texts: list[tuple[str, str]] = field(default_factory=list)
    tunes: list[tuple[str, Melody]] = field(default_factory=list)
    taken: list[tuple[str, str]] = field(default_factory=list)  # (file, what was taken from it)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (file, why)

    @property
    def chars(self) -> int:
        return sum(len(t) for _, t in self.texts)

    @property
    def is_text(self) -> bool:
        return is_text_domain(self.domain)

    @property
    def notes(self) -> int:
        return sum(len(m.notes) for _, m in self.tunes)

    def meters(self) -> Counter:
        return Counter(f"{m.meter[0]}/{m.meter[1]}" for _, m in self.tunes)

    def keys(self) -> Counter:
        return Counter(key_name(m.key[0] % 12, m.key[1]) for _, m in self.tunes)

    def usable(self) -> str | None:
        """None when the material can train a model; else why not."""
        if self.is_text and self.chars < 200:
            return f"{self.chars} characters of text were read; at least 200 are needed"
        if not self.is_text and len(self.tunes) < 2:
            return f"{len(self.tunes)} tune(s) were read; at least 2 are needed (one is kept for validation)"
        return None


# reading files --------------------------------------------------------------------------------------
def unpack(uploads: list[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[tuple[str, str]]]:
    """The files of the upload (a zip's members in place of the zip) and the entries refused, with limits on
    the count, each size and the total."""
    files: list[tuple[str, bytes]] = []
    refused: list[tuple[str, str]] = []
    for name, data in uploads:
        if name.lower().endswith(".zip"):
            files += _zip_members(name, data, refused)
        else:
            files.append((name, data))
    if len(files) > MAX_FILES:
        raise MaterialError(f"{len(files):,} files were uploaded; the limit is {MAX_FILES}")
    if sum(len(d) for _, d in files) > MAX_TOTAL_BYTES:
        raise MaterialError(f"The files hold more than {MAX_TOTAL_BYTES / 1e6:.0f} MB; that is the limit")
    return files, refused


def _zip_members(name: str, data: bytes, refused: list[tuple[str, str]]) -> list[tuple[str, bytes]]:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise MaterialError(f"{name} is not a readable zip ({e})") from None
    if len(infos) > MAX_FILES:
        raise MaterialError(f"{name} holds {len(infos):,} files; the limit is {MAX_FILES}")
    if sum(i.file_size for i in infos) > MAX_TOTAL_BYTES:
        raise MaterialError(f"{name} unpacks to more than {MAX_TOTAL_BYTES / 1e6:.0f} MB; that is the limit")
    out, total = [], 0
    for info in infos:
        member = f"{name}/{info.filename}"
        if info.file_size > MAX_FILE_BYTES:
            refused.append((member, f"larger than {MAX_FILE_BYTES / 1e6:.0f} MB"))
            continue
        try:
            raw = _read_member(z, info)
        except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError) as e:
            refused.append((member, f"cannot be unpacked ({e})"[:200]))
            continue
        total += len(raw)
        if total > MAX_TOTAL_BYTES:
            raise MaterialError(f"{name} unpacks to more than {MAX_TOTAL_BYTES / 1e6:.0f} MB; that is the limit")
        out.append((member, raw))
    return out


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """The member's bytes, read in pieces and stopped past the size limit, whatever the zip declared."""
    chunks, size = [], 0
    with z.open(info) as f:
        while piece := f.read(65536):
            size += len(piece)
            if size > MAX_FILE_BYTES:
                raise ValueError(f"it unpacks to more than {MAX_FILE_BYTES / 1e6:.0f} MB")
            chunks.append(piece)
    return b"".join(chunks)


def read_material(domain: str, uploads: list[tuple[str, bytes]]) -> Material:
    """Every uploaded file (or zip member) taken or refused, with the reason, for ``domain``."""
    files, refused = unpack(uploads)
    mat = Material(domain, refused=refused)
    for name, data in files:
        base = name.rsplit("/", 1)[-1]
        if base.startswith(".") or "__MACOSX/" in name:
            continue  # a zip's bookkeeping, not material
        try:
            if is_text_domain(domain):
                mat.texts.append((name, _text(name, data)))
                mat.taken.append((name, f"{len(mat.texts[-1][1]):,} characters"))
            else:
                tunes = _tunes(name, data)
                mat.tunes += tunes
                mat.taken.append((name, _tunes_line(tunes)))
        except (DataError, MidiError) as e:
            mat.refused.append((name, str(e)))
    return mat


def _text(name: str, data: bytes) -> str:
    if not name.lower().endswith(TEXT_SUFFIXES):
        raise DataError("not a .txt file")
    if not data.strip():
        raise DataError("empty")
    if b"\x00" in data[:65536]:
        raise DataError("binary data, not text (it holds NUL bytes)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError("not UTF-8 text (save it as UTF-8)") from None
    control = sum(1 for c in text[:65536] if ord(c) < 32 and c not in "\n\r\t\f")
    if control > 0.01 * min(len(text), 65536):
        raise DataError("binary data, not text (many control characters)")
    return text.replace("\r\n", "\n")


def _tunes(name: str, data: bytes) -> list[tuple[str, Melody]]:
    lower = name.lower()
    suffix = "." + lower.rsplit(".", 1)[-1] if "." in lower else ""
    if suffix in MIDI_SUFFIXES:
        melody = read_midi(data)  # MidiError says why: not MIDI, drums only, no notes, ...
        if len(melody.notes) < 4:
            raise DataError(f"only {len(melody.notes)} notes")
        return [(name, melody)]
    if suffix in SCORE_SUFFIXES:
        if len(data) > MAX_SCORE_BYTES:
            raise DataError(f"larger than {MAX_SCORE_BYTES / 1e6:.0f} MB (the limit for ABC and MusicXML)")
        return _score_tunes(name, data, SCORE_SUFFIXES[suffix])
    raise DataError("not a .mid, .midi, .abc, .musicxml or .xml file")


def _score_tunes(name: str, data: bytes, fmt: str) -> list[tuple[str, Melody]]:
    """Each tune of an ABC file (a tune book holds many) or a MusicXML score, through MIDI so that meter, key
    and melody line are read as for any MIDI file."""
    from music21 import converter, stream  # heavy, and needed for scores only
    from music21.midi.translate import streamToMidiFile

    try:
        parsed = converter.parseData(data.decode("utf-8", errors="replace"), format=fmt)
    except Exception as e:  # music21 raises many types on malformed input
        raise DataError(f"not readable as {fmt} ({type(e).__name__})") from None
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    tunes = []
    for i, score in enumerate(scores):
        try:
            melody = read_midi(streamToMidiFile(score).writestr())
        except Exception:  # one broken tune of a book must not lose the others
            continue
        if len(melody.notes) >= 4:
            tunes.append((f"{name}#{i + 1}" if len(scores) > 1 else name, melody))
    if not tunes:
        raise DataError(f"no tune with notes could be read as {fmt}")
    return tunes


def _tunes_line(tunes: list[tuple[str, Melody]]) -> str:
    notes = sum(len(m.notes) for _, m in tunes)
    return f"{len(tunes)} tune{'s' * (len(tunes) != 1)}, {notes:,} notes"


# the corpus folder ----------------------------------------------------------------------------------
def _order(name: str) -> str:
    """A fixed order that does not follow the file names (a collection sorted by date or key would put one
    kind of tune in validation)."""
    return hashlib.sha1(name.encode()).hexdigest()


def split_plan(mat: Material) -> dict:
    """How the material is split: text: the last tenth of each text (at a line end) for validation; tunes:
    every tenth tune (at least one)."""
    if mat.is_text:
        valid = sum(len(t) - _cut(t) for _, t in mat.texts)
        return {"train": mat.chars - valid, "valid": valid, "unit": "characters"}
    n_valid = max(1, round(len(mat.tunes) * VALID_SHARE))
    return {"train": len(mat.tunes) - n_valid, "valid": n_valid, "unit": "tunes"}


def _cut(text: str) -> int:
    """Where a text's validation part starts: at the line end nearest 90% of it."""
    at = int(len(text) * (1 - VALID_SHARE))
    line_end = text.rfind("\n", 0, at)
    return line_end + 1 if line_end > len(text) * 0.7 else at


def write_corpus(mat: Material, folder: str | Path) -> Path:
    """The material as a corpus folder (train/valid/test; test is left empty, so validation stands for it)."""
    if why := mat.usable():
        raise MaterialError(why)
    folder = Path(folder)
    for split in ("train", "valid", "test"):
        (folder / split).mkdir(parents=True, exist_ok=True)
    if mat.is_text:
        for i, (_, text) in enumerate(mat.texts):
            at = _cut(text)
            (folder / "train" / f"{i:04d}.txt").write_text(text[:at], encoding="utf-8")
            (folder / "valid" / f"{i:04d}.txt").write_text(text[at:], encoding="utf-8")
        return folder
    tunes = sorted(mat.tunes, key=lambda t: _order(t[0]))
    n_valid = split_plan(mat)["valid"]
    for i, (_, melody) in enumerate(tunes):
        write_midi(melody, folder / ("valid" if i < n_valid else "train") / f"{i:04d}.mid")
    return folder
