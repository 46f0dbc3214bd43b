"""Seeded, batched loading: the same seed gives the same batches and augmentations, with or without workers."""

from __future__ import annotations

from typing import Any, Iterator

import torch


class SeededSampler(torch.utils.data.Sampler):
    """Yields ``(index, item_seed)`` pairs; each pass over the data (epoch) draws a fresh order and seeds.

    The seeds are drawn in the main process, so augmentation does not depend on which worker
    process loads an item or on how many workers there are.
    """

    def __init__(self, length: int, shuffle: bool, seed: int, with_seeds: bool = True) -> None:
        self.length, self.shuffle, self.seed, self.with_seeds = length, shuffle, seed, with_seeds
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[tuple[int, int] | int]:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        self.epoch += 1
        order = torch.randperm(self.length, generator=gen) if self.shuffle else torch.arange(self.length)
        seeds = torch.randint(0, 2**62, (self.length,), generator=gen)
        if not self.with_seeds:  # a dataset that takes plain indices (no per-item augmentation seed)
            return iter(order.tolist())
        return iter(zip(order.tolist(), seeds.tolist()))


def collate(batch: list[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
    """Stack images into Tensor[B, 3, R, R]; keep targets as a list (each has its own box count)."""
    images, targets = zip(*batch)
    return torch.stack(images), list(targets)


def _worker_init(_: int) -> None:
    # Workers only copy and resize small tensors; one thread each avoids oversubscribing the cores
    # the training step needs.
    torch.set_num_threads(1)


def make_loader(
    dataset: torch.utils.data.Dataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    seed: int = 0,
    *,
    drop_last: bool = False,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """A DataLoader yielding (images Tensor[B, 3, R, R], list of B target dicts).

    Deterministic given ``seed``: the order and every item's augmentation seed come from
    ``SeededSampler`` (datasets with ``seeded_keys = True`` receive ``(index, seed)`` keys). Workers (``num_workers > 0``) are persistent across epochs and share the
    dataset's decoded-image cache through fork.
    """
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=SeededSampler(len(dataset), shuffle, seed, getattr(dataset, "seeded_keys", False)),
        num_workers=num_workers,
        collate_fn=collate,
        drop_last=drop_last,
        pin_memory=pin_memory,
        persistent_workers=num_workers > 0,
        worker_init_fn=_worker_init if num_workers > 0 else None,
        prefetch_factor=4 if num_workers > 0 else None,
    )
