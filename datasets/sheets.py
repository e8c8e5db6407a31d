"""Reading annotation sheets as shipped, with errors that name the file and the column."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from datasets.errors import DatasetError


def read_sheet(
    path: Path, required: tuple[str, ...], sheet_name: str | int = 0, header_row: int = 0
) -> pd.DataFrame:
    """Reads an .xlsx or .csv sheet; string cells are stripped, required columns checked."""
    if not path.is_file():
        raise DatasetError(f"annotation sheet {path} does not exist")
    try:
        if path.suffix.lower() == ".csv":
            frame = pd.read_csv(path, header=header_row)
        else:
            frame = pd.read_excel(path, sheet_name=sheet_name, header=header_row)
    except (ValueError, OSError) as error:
        raise DatasetError(f"annotation sheet {path} cannot be read: {error}") from error
    frame.columns = [str(column).strip() for column in frame.columns]
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DatasetError(
            f"annotation sheet {path} lacks column(s) {missing}; it has {list(frame.columns)}"
        )
    for column in frame.columns:
        if frame[column].dtype == object or pd.api.types.is_string_dtype(frame[column]):
            frame[column] = frame[column].map(lambda v: v.strip() if isinstance(v, str) else v)
    return frame


def frame_number(value: object) -> int | None:
    """A frame-number cell as an int, or None where the sheet writes '/', '-' or nothing."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number == int(number) else None


def file_digest(*paths: Path) -> str:
    """The annotation version: a hash of the sheets' bytes, so relabelled sheets never mix."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
