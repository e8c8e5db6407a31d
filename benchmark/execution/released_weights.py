"""Published per-subject weights as jobs: one file per held-out subject of a LOSO protocol
(e.g. STSTNet's `STSTNet_Weights/006.pth`), each evaluated on its own fold without training.

A folder is matched to a task's folds by subject name (`006.pth` or `006/006.pth` <-> fold
`samm/006`; numbers compared without padding, so `s01.pth` is SMIC's `s1`;
`<dataset>_<subject>.pth` where two datasets share a subject name). A fold without a file or a file without a fold is
an error that names them: a partial or foreign folder is never scored.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mer_bench.datasets.sheets import name_key

SUFFIXES = (".pth", ".pt", ".safetensors")


def weight_files(folder: Path) -> list[Path]:
    """The folder's weights files: `sub01.pth` in it, or `sub01/sub01.pth` (a folder per
    subject holding the file of its name, as the SKD-TSTSAN release saves its models)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"weights folder {folder} is not a folder; expected one file per "
                         f"held-out subject ({', '.join(SUFFIXES)}), e.g. {folder}/sub01.pth "
                         f"or {folder}/sub01/sub01.pth")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix in SUFFIXES]
    files += [p for sub in folder.iterdir() if sub.is_dir() for p in sub.iterdir()
              if p.is_file() and p.suffix in SUFFIXES and p.stem == sub.name]
    return sorted(files)


def match_weights(folder: Path, folds: list[str]) -> dict[str, Path]:
    """Fold ("dataset/subject") -> its weights file; every fold needs one, every file a fold."""
    files = weight_files(folder)
    by_name: dict[str, list[str]] = {}
    for fold in folds:
        dataset, _, subject = fold.partition("/")
        for name in (name_key(subject), name_key(f"{dataset}_{subject}")):
            by_name.setdefault(name, []).append(fold)
    matched: dict[str, Path] = {}
    extra = []
    for path in files:
        candidates = by_name.get(name_key(path.stem), [])
        if len(candidates) > 1:
            raise ValueError(f"weights file {path} matches folds {candidates}; name it "
                             f"<dataset>_<subject>{path.suffix}")
        if not candidates:
            extra.append(path.name)
            continue
        fold = candidates[0]
        if fold in matched:
            raise ValueError(f"weights files {matched[fold].name} and {path.name} in {folder} "
                             f"both match fold {fold}")
        matched[fold] = path
    missing = [fold for fold in folds if fold not in matched]
    if missing or extra:
        raise ValueError(f"weights folder {folder} does not match the task's {len(folds)} folds: "
                         f"no file for {missing or 'none'}; no fold for {extra or 'none'} "
                         "(one file per held-out subject, named like the subject)")
    return matched


def folder_digest(files: dict[str, Path]) -> str:
    """Changes when any matched file's bytes or its fold change."""
    digest = hashlib.sha256()
    for fold, path in sorted(files.items()):
        digest.update(fold.encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]
