"""Fixtures for the data tests; the helpers live in ``coco_fixtures`` (a unique module name to import)."""

from coco_fixtures import make_coco  # noqa: F401  (re-exported as a pytest fixture)
