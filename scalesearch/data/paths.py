"""Find a dataset's images folder and instances file from what a user typed."""

from __future__ import annotations

from pathlib import Path

from scalesearch.errors import UserError


def _first_dir(candidates: list[Path]) -> Path | None:
    return next((p for p in candidates if p.is_dir()), None)


def _from_folder(root: Path, split: str) -> tuple[Path, Path]:
    """``root/images`` (or ``images/<split>``, ``<split>``, ``<split>2017``) + ``root/annotations/instances_<split>.json``."""
    anns = [root / "annotations" / f"instances_{split}.json", root / "annotations" / f"instances_{split}2017.json"]
    ann_file = next((p for p in anns if p.is_file()), None)
    if ann_file is None:
        raise UserError(f"dataset {root}: must contain {anns[0].relative_to(root)}, but it was not found")
    images = [root / "images" / split, root / "images", root / split, root / f"{split}2017"]
    images_dir = _first_dir(images)
    if images_dir is None:
        raise UserError(f"dataset {root}: must contain an images/ folder, but it was not found")
    return images_dir, ann_file


def _from_json(ann_file: Path) -> tuple[Path, Path]:
    """An instances file alone: the images are in ``images/`` beside its folder or beside the file."""
    images_dir = _first_dir([ann_file.parent.parent / "images", ann_file.parent / "images"])
    if images_dir is None:
        raise UserError(
            f"annotation file {ann_file}: an images/ folder must sit beside it or beside its folder, "
            f"but none was found (pass (images_dir, ann_file) explicitly)"
        )
    return images_dir, ann_file


def resolve_dataset(path: str | Path | tuple | list | None, split: str) -> tuple[Path, Path]:
    """(images_dir, ann_file) of one split of a COCO-format dataset.

    path: a dataset folder laid out like ``../shared/datasets/bccd`` (``images/``,
    ``annotations/instances_<split>.json``); an instances JSON file; an explicit
    ``(images_dir, ann_file)`` pair; or None for the built-in synthetic dataset (generated and
    cached on first use, see ``synthetic_dataset``). Missing folders/files raise ``UserError``.
    """
    if path is None:
        from scalesearch.data.synthetic import synthetic_dataset

        return _from_folder(synthetic_dataset(), split)
    if isinstance(path, (tuple, list)):
        images_dir, ann_file = (Path(p).expanduser() for p in path)
        if not images_dir.is_dir():
            raise UserError(f"images folder {images_dir}: must exist, but it was not found")
        if not ann_file.is_file():
            raise UserError(f"annotation file {ann_file}: must exist, but it was not found")
        return images_dir, ann_file
    path = Path(path).expanduser()
    if path.is_file() and path.suffix == ".json":
        return _from_json(path)
    if not path.is_dir():
        raise UserError(f"dataset {path}: must be a dataset folder or an instances .json file, but it was not found")
    return _from_folder(path, split)
