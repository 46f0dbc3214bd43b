"""make_loader: batch shapes and seeded determinism, with and without worker processes."""

from __future__ import annotations

import pytest
import torch

from scalesearch.data import CocoDetection, make_loader, resolve_dataset, synthetic_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = synthetic_dataset(tmp_path_factory.mktemp("syn"), num_train=10, num_val=2, image_size=64, min_object=8, max_object=40)
    return CocoDetection(*resolve_dataset(root, "train"), 64, train=True)


def batches(loader, epochs=1):
    return [batch for _ in range(epochs) for batch in loader]


def test_batches_have_the_contract_shapes(dataset):
    images, targets = next(iter(make_loader(dataset, 4, True, 0, 0)))
    assert images.shape == (4, 3, 64, 64) and images.dtype == torch.float32
    assert len(targets) == 4
    for t in targets:
        assert set(t) == {"boxes", "labels", "image_id", "scale", "orig_size"}
        assert t["boxes"].dtype == torch.float32 and t["boxes"].shape == (len(t["labels"]), 4)
        assert t["labels"].dtype == torch.int64 and isinstance(t["image_id"], int) and isinstance(t["scale"], float)
    assert [len(b[0]) for b in batches(make_loader(dataset, 4, True, 0, 0))] == [4, 4, 2]
    assert [len(b[0]) for b in batches(make_loader(dataset, 4, True, 0, 0, drop_last=True))] == [4, 4]


def same(a, b) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x[0], y[0]) and all(torch.equal(s["boxes"], t["boxes"]) for s, t in zip(x[1], y[1]))
        for x, y in zip(a, b)
    )


def test_same_seed_same_batches_and_epochs_differ(dataset):
    first = batches(make_loader(dataset, 4, True, 0, seed=5), epochs=2)
    assert same(first, batches(make_loader(dataset, 4, True, 0, seed=5), epochs=2))
    assert not same(first[:3], first[3:])  # a second epoch reshuffles and re-augments
    assert not same(first, batches(make_loader(dataset, 4, True, 0, seed=6), epochs=2))


def test_workers_do_not_change_the_batches(dataset):
    assert same(batches(make_loader(dataset, 4, True, 0, seed=2)), batches(make_loader(dataset, 4, True, 1, seed=2)))


def test_no_shuffle_keeps_dataset_order(dataset):
    ids = [t["image_id"] for _, targets in make_loader(dataset, 4, False, 0, 0) for t in targets]
    assert ids == dataset.image_ids
