"""Datasets: any COCO-format detection dataset, the built-in synthetic one, and seeded loading."""

from scalesearch.data.clean import DatasetStats
from scalesearch.data.coco import CocoDetection, DatasetInfo
from scalesearch.data.loader import collate, make_loader
from scalesearch.data.paths import resolve_dataset
from scalesearch.data.synthetic import synthetic_dataset

__all__ = [
    "CocoDetection",
    "DatasetInfo",
    "DatasetStats",
    "collate",
    "make_loader",
    "resolve_dataset",
    "synthetic_dataset",
]
