"""Reading annotation files as shipped, with errors that name the file, the row and the column.

Also the rules every sheet-based adapter shares, each named so that it can be counted and
listed per task: how frame numbers that make no sense are repaired, which duplicate rows are
dropped, where annotation files are looked for.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mer_bench.datasets.clip import Clip, Note
from mer_bench.datasets.errors import DatasetError

ANNOTATIONS_ENV = "MER_BENCH_ANNOTATIONS"
"""A folder of annotation files that do not ship inside a dataset's own folder (the SMIC apex
list, the MEGC 2019 composite list), or of sheets kept apart from the frames. The CLI's
`--annotations DIR` sets it."""

HEADER_SEARCH_ROWS = 40  # the header may sit below notes (SAMM: row 14)


def annotation_folders(*roots: Path) -> list[Path]:
    """Where annotation files are looked for, in order: each root, its parent, then the folder
    named by $MER_BENCH_ANNOTATIONS."""
    folders: list[Path] = []
    for root in roots:
        folders += [Path(root), Path(root).parent]
    if os.environ.get(ANNOTATIONS_ENV):
        folders.append(Path(os.environ[ANNOTATIONS_ENV]))
    unique: list[Path] = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def find_annotation(dataset: str, what: str, patterns: tuple[str, ...], folders: list[Path],
                    layout: str = "") -> list[Path]:
    """Files matching any pattern (case-insensitive) in the first folder that has one;
    `layout`, the dataset's expected layout, is shown where none is found."""
    for folder in folders:
        if not folder.is_dir():
            continue
        names = sorted(entry.name for entry in folder.iterdir() if entry.is_file())
        found = [folder / name for name in names
                 if any(fnmatch.fnmatch(name.lower(), pattern.lower()) for pattern in patterns)]
        if found:
            return found
    raise DatasetError(
        f"{dataset}: no {what} ({' or '.join(patterns)}) in {', '.join(map(str, folders))}; put "
        f"it in one of these folders, or give its folder with --annotations DIR (the "
        f"{ANNOTATIONS_ENV} environment variable)" + (f"; the data root holds {layout}"
                                                       if layout else "")
    )


@dataclass
class Sheet:
    """A table read from an .xlsx/.xls/.csv file; its index is the row number a spreadsheet
    shows (1-based, counting the header and any notes above it)."""

    path: Path
    sheet_name: str | None
    header_row: int
    frame: pd.DataFrame
    stripped: dict[int, list[str]] = field(default_factory=dict)  # row -> columns stripped

    def where(self, row: int) -> str:
        sheet = f" sheet {self.sheet_name!r}" if self.sheet_name else ""
        return f"{self.path}{sheet} row {row}"

    def rows(self):
        return self.frame.iterrows()


def _cells(values) -> list[str]:
    return [str(v).strip() if v is not None and not _blank(v) else "" for v in values]


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value)) or \
        (isinstance(value, str) and not value.strip())


def _raw_tables(path: Path, sheet_name: str | None) -> list[tuple[str | None, pd.DataFrame]]:
    try:
        if path.suffix.lower() == ".csv":
            table = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
            return [(None, table.map(lambda v: None if v == "" else v))]
        book = pd.ExcelFile(path)
        if sheet_name is not None and sheet_name not in book.sheet_names:
            raise DatasetError(f"annotation sheet {path} has no sheet {sheet_name!r}; it has "
                               f"{book.sheet_names}")
        names = [sheet_name] if sheet_name is not None else book.sheet_names
        return [(name, pd.read_excel(book, sheet_name=name, header=None, dtype=object))
                for name in names]
    except DatasetError:
        raise
    except Exception as error:  # noqa: BLE001 -- any reader's error (a truncated xlsx is a
        # BadZipFile) is the file's, and says which file
        raise DatasetError(f"annotation sheet {path} cannot be read: {type(error).__name__}: "
                           f"{error}") from error


def read_sheet(path: Path, required: tuple[str, ...], sheet_name: str | None = None,
               prefer: str | None = None) -> Sheet:
    """Reads the first table (sheet) whose header row holds every required column.

    The header is the first of the top rows that names them all (notes above it are skipped);
    string cells are stripped (recorded for the required columns, the ones adapters read).
    Without `sheet_name` every sheet is tried, those whose name contains `prefer` first. A
    missing column is a DatasetError that names the file, the sheet, the columns missing and
    the closest header row found.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"annotation sheet {path} does not exist")
    tables = _raw_tables(path, sheet_name)
    if prefer:
        tables.sort(key=lambda item: prefer.lower() not in str(item[0]).lower())
    closest: tuple[int, str | None, int, list[str]] | None = None
    for name, raw in tables:
        for index in range(min(HEADER_SEARCH_ROWS, len(raw))):
            cells = _cells(raw.iloc[index].tolist())
            hits = sum(column in cells for column in required)
            if hits == len(required):
                return _table(path, name, raw, index, cells, required)
            if closest is None or hits > closest[0]:
                closest = (hits, name, index, cells)
    sheet = f" (sheet {closest[1]!r})" if closest and closest[1] else ""
    if closest is None or closest[0] == 0:
        raise DatasetError(f"annotation sheet {path}{sheet} has no header row with the columns "
                           f"{list(required)} in its first {HEADER_SEARCH_ROWS} rows")
    missing = [column for column in required if column not in closest[3]]
    raise DatasetError(
        f"annotation sheet {path}{sheet} lacks column(s) {missing}; its header (row "
        f"{closest[2] + 1}) has {[c for c in closest[3] if c]}"
    )


def _table(path: Path, name: str | None, raw: pd.DataFrame, index: int, cells: list[str],
           required: tuple[str, ...]) -> Sheet:
    columns = [cell or f"Unnamed: {i}" for i, cell in enumerate(cells)]
    body = raw.iloc[index + 1:].copy()
    body.columns = columns
    body.index = [int(i) + 1 for i in body.index]  # spreadsheet row numbers
    body = body[~body.map(_blank).all(axis=1)]  # blank lines carry no annotation
    stripped: dict[int, list[str]] = {}
    for column in columns:
        for row, value in body[column].items():
            if column in required and isinstance(value, str) and value != value.strip():
                stripped.setdefault(row, []).append(column)
        body[column] = body[column].map(
            lambda v: None if _blank(v) else (v.strip() if isinstance(v, str) else v))
    return Sheet(path, name, index + 1, body, stripped)


def frame_number(value: object) -> int | None:
    """A frame-number cell as an int, or None where it writes '/', '-', text or nothing."""
    if _blank(value):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    if number != int(number) or number < 0:
        return None
    return int(number)


def file_digest(*paths: Path) -> str:
    """The annotation version: a hash of the files' bytes, so relabelled sheets never mix."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()[:16]


def name_key(text: object) -> str:
    """A subject or clip name compared across lists that pad numbers differently: lower case,
    no surrounding spaces, no leading zeros ('s01_ne_01' == 's1_ne_01', '006' == '6')."""
    return re.sub(r"(?<![0-9])0+(?=[0-9])", "", str(text).strip().lower())


# The frame rules. Each is one sentence, the same for every clip it hits, so it is counted.
ONSET_OR_OFFSET_UNREADABLE = "onset or offset is not a frame number"
ZERO_FRAME = "frame number 0 read as 1 (frames are numbered from 1)"
ONSET_AFTER_APEX = "onset after the apex: onset set to the apex"
OFFSET_BEFORE_APEX = "offset before the apex: offset set to the apex"
DUPLICATE_ROW = "duplicate row (same clip, same values): later row dropped"
CONFLICTING_ROW = "duplicate row (same clip, other values): later row dropped, first kept"
SPACES_STRIPPED = "spaces around a cell stripped"
MIXED_CASE = "emotion written in another case than the dataset's other rows"


SUBJECT_NOT_A_NUMBER = "subject is not a number"


class RowReader:
    """Turns annotation rows into clips, applying the shared rules and noting each one.

    Per row: `frames(...)` applies the frame rules, then `add(clip)` keeps the clip (with the
    notes of its row) unless an earlier row was the same clip.
    """

    def __init__(self, sheet: Sheet):
        self.sheet = sheet
        self.clips: list[Clip] = []
        self.notes: list[Note] = []
        self._pending: list[Note] = []
        self._first: dict[str, tuple[Clip, int]] = {}

    def frames(self, key: str, row: int, onset_cell: object, apex_cell: object,
               offset_cell: object) -> tuple[int, int | None, int] | None:
        """Onset, apex (None if not given) and offset after the frame rules; None (and a
        "dropped" note) when the onset or the offset is no frame number at all."""
        where = self.sheet.where(row)
        self._pending = []
        onset, apex, offset = (frame_number(onset_cell), frame_number(apex_cell),
                               frame_number(offset_cell))
        if onset is None or offset is None:
            self.note(key, "dropped", ONSET_OR_OFFSET_UNREADABLE,
                      f"{where}: onset {onset_cell!r}, offset {offset_cell!r}")
            return None
        if onset == 0 or apex == 0:
            repaired = (onset or 1, None if apex is None else (apex or 1))
            self._pending.append(Note(key, "repaired", ZERO_FRAME,
                                      f"{where}: onset, apex {onset}, {apex} -> "
                                      f"{repaired[0]}, {repaired[1]}"))
            onset, apex = repaired
        if apex is not None and onset > apex:
            self._pending.append(Note(key, "repaired", ONSET_AFTER_APEX,
                                      f"{where}: onset {onset} > apex {apex}; onset -> {apex}"))
            onset = apex
        if apex is not None and offset < apex:
            self._pending.append(Note(key, "repaired", OFFSET_BEFORE_APEX,
                                      f"{where}: offset {offset} < apex {apex}; offset -> {apex}"))
            offset = apex
        return onset, apex, offset

    def note(self, key: str, action: str, rule: str, detail: str = "") -> None:
        self.notes.append(Note(key, action, rule, detail))

    def subject(self, dataset: str, row: int, cells: dict, parse) -> str | None:
        """The subject folder `parse` makes of the row's Subject cell; None (and a "dropped"
        note) when the cell is no subject number."""
        subject = parse(cells["Subject"])
        if subject is None:
            self.note(f"{dataset}/{cells['Subject']}/{cells['Filename']}", "dropped",
                      SUBJECT_NOT_A_NUMBER, f"{self.sheet.where(row)}: {cells['Subject']!r}")
        return subject

    def add(self, clip: Clip, extra: list[Note] = ()) -> None:
        """Keeps the clip unless an earlier row is the same clip (then this row is dropped)."""
        row = clip.row or 0
        pending, self._pending = self._pending + list(extra), []
        if clip.key in self._first:
            first, first_row = self._first[clip.key]
            same = (first.emotion, first.onset, first.apex, first.offset) == \
                (clip.emotion, clip.onset, clip.apex, clip.offset)
            self.note(clip.key, "dropped", DUPLICATE_ROW if same else CONFLICTING_ROW,
                      f"{self.sheet.where(row)} repeats row {first_row}")
            return
        if row in self.sheet.stripped:
            pending.append(Note(clip.key, "repaired", SPACES_STRIPPED,
                                f"{self.sheet.where(row)}: {', '.join(self.sheet.stripped[row])}"))
        self.notes += pending
        self._first[clip.key] = (clip, row)
        self.clips.append(clip)

    def finish(self) -> tuple[list[Clip], list[Note]]:
        self.notes += mixed_case_notes(self.clips)
        return self.clips, self.notes


def mixed_case_notes(clips: list[Clip]) -> list[Note]:
    """Emotions whose spelling differs only in case from the dataset's most common spelling."""
    spellings: dict[str, dict[str, int]] = {}
    for clip in clips:
        counts = spellings.setdefault(clip.emotion.lower(), {})
        counts[clip.emotion] = counts.get(clip.emotion, 0) + 1
    usual = {lower: max(counts, key=lambda s: (counts[s], s == lower))
             for lower, counts in spellings.items()}
    return [Note(clip.key, "repaired", MIXED_CASE,
                 f"{clip.emotion!r} read as {usual[clip.emotion.lower()]!r}")
            for clip in clips if clip.emotion != usual[clip.emotion.lower()]]


class SheetDataset:
    """What every adapter shares: clips and notes read once, on first use.

    Subclasses set `name` and implement `_read() -> (clips, notes)` and `annotation_version()`.
    """

    name = "dataset"
    synthetic = False
    subject_folder: str | None = None  # a regex every subject folder's name matches
    root_note = ""  # said when the subject folders were found below the root given

    def clips(self) -> list[Clip]:
        return list(self._loaded()[0])

    def notes(self) -> list[Note]:
        """Every rule applied while reading: rows dropped, values repaired, fallbacks."""
        return list(self._loaded()[1])

    def _loaded(self) -> tuple[list[Clip], list[Note]]:
        if getattr(self, "_cache", None) is None:
            self._cache = self._read()
        return self._cache

    def _read(self) -> tuple[list[Clip], list[Note]]:
        raise NotImplementedError

    def annotation_version(self) -> str:
        """A hash of the sheet read, so relabelled sheets never mix in one table."""
        return file_digest(self.sheet)

    def _require_root(self, expected: str) -> None:
        if not self.root.is_dir():
            raise DatasetError(f"{self.name}: data root {self.root} is not a folder; expected "
                               f"{expected}")

    def _settle_root(self, expected: str) -> None:
        """The root given, or else the one folder one level down that holds the subject
        folders (a dataset as it unpacks: CASME2/CASME2_RAW_selected/, CAS(ME)^3's part_A/),
        which `root_note` then names."""
        self._require_root(expected)
        if self.subject_folder is None or self._holds_subjects(self.root):
            return
        below = [d for d in sorted(self.root.iterdir()) if d.is_dir() and self._holds_subjects(d)]
        if len(below) > 1:
            raise DatasetError(f"{self.name}: several folders under the data root {self.root} "
                               f"hold subject folders ({', '.join(d.name for d in below)}); give "
                               f"the one to read with --data {self.name}=DIR")
        if below:
            self.root_note = (f"{self.name}: read {below[0]}, the folder of subject folders "
                              f"one level below the data root given ({self.root})")
            self.root = below[0]

    def _holds_subjects(self, folder: Path) -> bool:
        return any(entry.is_dir() and re.fullmatch(self.subject_folder, entry.name)
                   for entry in folder.iterdir())

    def _require_some(self, folders: list[Path], expected: str) -> None:
        """A wrong root: not one of the folders the annotation names exists under it."""
        if folders and not any(folder.is_dir() for folder in folders):
            shown = ", ".join(str(f) for f in folders[:3])
            raise DatasetError(
                f"{self.name}: none of the {len(folders)} folders the annotation names exists "
                f"under the data root {self.root} (looked for {shown}, ...); expected {expected}"
            )
