"""Splitting without leakage, and checking two files for overlap.

A random split puts near-copies of one ticket on both sides, and the test score then measures memory, not
skill. Here near-duplicate clusters are formed first and each cluster goes to one side as a whole.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from course_lib.curation.dedup import clusters, near_duplicate_pairs
from course_lib.curation.records import Record


def split_without_leakage(records: Sequence[Record], *, test_fraction: float = 0.1, threshold: float = 0.7,
                          seed: int = 0) -> tuple[list[Record], list[Record]]:
    """(train, test): about `test_fraction` of rows in test, and no near-duplicate cluster on both sides."""
    # every similar pair, not just links to a representative: two copies linked to different representatives
    # must still land on the same side
    pairs = near_duplicate_pairs([r.text("user") for r in records], threshold=threshold)
    grouped = clusters(len(records), pairs)
    in_group = {i for g in grouped for i in g}
    units = grouped + [[i] for i in range(len(records)) if i not in in_group]
    random.Random(seed).shuffle(units)
    target = round(test_fraction * len(records))
    test_idx: set[int] = set()
    for unit in units:
        if len(test_idx) >= target:
            break
        test_idx.update(unit)
    train = [r for i, r in enumerate(records) if i not in test_idx]
    test = [r for i, r in enumerate(records) if i in test_idx]
    return train, test


def contamination(train: Sequence[str], test: Sequence[str], *, threshold: float = 0.7) -> list[tuple[int, int, float]]:
    """(train index, test index, similarity) for every test text that near-duplicates a training text."""
    texts = list(train) + list(test)
    n = len(train)
    return [(i, j - n, s) for i, j, s in near_duplicate_pairs(texts, threshold=threshold) if i < n <= j]


def stratified_sample(records: Sequence[Record], n: int, key, seed: int = 0) -> list[Record]:
    """`n` rows with every value of `key(row)` as equally represented as the data allows, in file order."""
    rng = random.Random(seed)
    groups: dict[object, list[Record]] = {}
    for record in records:
        groups.setdefault(key(record), []).append(record)
    for members in groups.values():
        rng.shuffle(members)
    chosen: list[Record] = []
    while len(chosen) < n and any(groups.values()):
        for value in sorted(groups, key=str):
            if groups[value] and len(chosen) < n:
                chosen.append(groups[value].pop())
    return sorted(chosen, key=lambda r: r.line)
