"""Exact and near duplicates, and label conflicts among them.

Duplicates are judged on the user turns: a system prompt shared by every row would make all rows look alike.
Exact duplicates have the same user text after normalisation (case, spacing, Unicode form). Near duplicates are
found with MinHash LSH (datasketch) over 5-byte shingles of it, then confirmed with the exact Jaccard
similarity, so the threshold means what it says. A cluster of near-identical prompts whose answers disagree on
the label is a label conflict: at least one of its labels is wrong, and nothing in the text says which.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence

import numpy as np
from datasketch import MinHash, MinHashLSH
from tqdm.auto import tqdm

from course_lib.curation.records import Record

SHINGLE = 5  # bytes per shingle (characters, for plain ASCII text)
NUM_PERM = 64  # MinHash permutations: more is more precise and slower (exact Jaccard confirms every pair anyway)
CANDIDATE_MARGIN = 0.15  # LSH looks this far below the threshold so that borderline pairs are not missed
SCREEN_MARGIN = 0.1  # candidates whose MinHash estimate is this far below the threshold skip the exact check


def normalise(text: str) -> str:
    """Case folded ("ß" and "SS" agree), NFKC Unicode form, runs of spaces collapsed: what 'the same text' means."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()


def fingerprint(text: str) -> str:
    """A hash of the normalised text."""
    return hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()


def shingles(text: str, k: int = SHINGLE) -> set[bytes]:
    """The set of k-byte pieces of the normalised text (UTF-8; k characters for plain ASCII)."""
    data = normalise(text).encode("utf-8")
    return {data[i : i + k] for i in range(max(1, len(data) - k + 1))}


def jaccard(a: set, b: set) -> float:
    """|a & b| / |a | b|: 1.0 for identical sets, 0.0 for disjoint ones."""
    if not a and not b:
        return 1.0
    common = len(a & b)
    return common / (len(a) + len(b) - common)


def exact_duplicates(texts: Sequence[str]) -> list[list[int]]:
    """Groups (indices into `texts`, in order) of texts identical after normalisation; only groups of 2 or more."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(fingerprint(text), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


def signatures(texts: Sequence[str], num_perm: int = NUM_PERM, seed: int = 1
               ) -> tuple[list[set], list[MinHash], np.ndarray]:
    """Shingle sets, MinHash signatures, and the signatures as one array (a row of `num_perm` values per text)."""
    sets = [shingles(t) for t in texts]
    hashes = MinHash.bulk([list(s) for s in sets], num_perm=num_perm, seed=seed, hashfunc=zlib.crc32)
    return sets, hashes, np.array([h.hashvalues for h in hashes], dtype=np.uint64).reshape(len(texts), num_perm)


def _similar(j: int, candidates: list[int], sets: list[set], sigs: np.ndarray, threshold: float) -> list[tuple[int, float]]:
    """(i, exact similarity) for candidates similar to text j: MinHash estimates screen, exact Jaccard confirms."""
    if not candidates:
        return []
    idx = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
    estimates = (sigs[idx] == sigs[j]).mean(axis=1)
    out = []
    for i in idx[estimates >= threshold - SCREEN_MARGIN].tolist():
        similarity = jaccard(sets[i], sets[j])
        if similarity >= threshold:
            out.append((i, similarity))
    return out


def _index(num_perm: int, threshold: float) -> MinHashLSH:
    return MinHashLSH(threshold=max(0.05, threshold - CANDIDATE_MARGIN), num_perm=num_perm)


def near_duplicate_pairs(texts: Sequence[str], threshold: float = 0.7, num_perm: int = NUM_PERM,
                         seed: int = 1) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every pair with Jaccard similarity >= threshold, i < j.

    Every pair costs time; on large files with dense clusters use `near_duplicate_links`, which finds the same groups.
    """
    sets, hashes, sigs = signatures(texts, num_perm, seed)
    lsh = _index(num_perm, threshold)
    pairs = []
    for j, lean in enumerate(hashes):
        pairs += [(i, j, s) for i, s in _similar(j, sorted(lsh.query(lean)), sets, sigs, threshold)]
        lsh.insert(j, lean, check_duplication=False)
    return sorted(pairs)


def near_duplicate_links(texts: Sequence[str], threshold: float = 0.7, num_perm: int = NUM_PERM,
                         seed: int = 1, progress: bool = False) -> list[tuple[int, int, float]]:
    """(i, j, similarity): text j near-duplicates the earlier text i, its most similar representative.

    Texts are compared only with representatives (earlier texts that duplicate nothing), so each text links
    to at most one earlier one and a cluster of a thousand copies costs a thousand comparisons, not a million.
    """
    sets, hashes, sigs = signatures(texts, num_perm, seed)
    lsh = _index(num_perm, threshold)
    links = []
    first_of: dict[frozenset, int] = {}  # exact copies link straight to their first occurrence, no LSH needed
    for j, lean in enumerate(tqdm(hashes, desc="near duplicates", unit=" rows", disable=not progress)):
        key = frozenset(sets[j])
        if key in first_of:
            links.append((first_of[key], j, 1.0))
            continue
        found = _similar(j, sorted(lsh.query(lean)), sets, sigs, threshold)
        if found:
            i, similarity = max(found, key=lambda f: (f[1], -f[0]))
            links.append((i, j, similarity))
        else:
            first_of[key] = j
            lsh.insert(j, lean, check_duplication=False)
    return links


def clusters(n: int, pairs: Sequence[tuple[int, int, float]]) -> list[list[int]]:
    """Connected groups of indices linked by `pairs` (union-find); only groups of 2 or more, each sorted."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, _ in pairs:
        parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return sorted(g for g in groups.values() if len(g) > 1)


def deduplicate(records: list[Record], *, threshold: float = 0.7, label_of: Callable[[Record], object] | None = None,
                progress: bool = False) -> tuple[list[Record], dict[str, list[tuple[Record, str]]]]:
    """Keep the first row of every duplicate group; drop whole groups whose labels conflict.

    Returns the kept rows and the removed ones by kind ("exact_duplicate", "near_duplicate", "label_conflict"),
    each with a reason naming the line it duplicates or conflicts with.
    """
    label_of = label_of or (lambda r: normalise(r.answer))
    removed: dict[str, list[tuple[Record, str]]] = {"exact_duplicate": [], "near_duplicate": [], "label_conflict": []}
    gone: set[int] = set()
    prompts = [r.text("user") for r in records]
    # 1) near-identical prompts (exact duplicates included) form clusters around a representative
    links = near_duplicate_links(prompts, threshold=threshold, progress=progress)
    for group in clusters(len(records), links):
        labels = {repr(label_of(records[i])) for i in group}
        first = records[group[0]]
        if len(labels) > 1:  # 2) the cluster disagrees on the label: no row of it can be trusted
            lines = ", ".join(str(records[i].line) for i in group)
            for i in group:
                removed["label_conflict"].append((records[i], f"near-identical prompts with different labels (lines {lines})"))
                gone.add(i)
            continue
        for i in group[1:]:  # 3) same label: keep the first, drop the rest
            same = fingerprint(prompts[i]) == fingerprint(prompts[group[0]])
            kind = "exact_duplicate" if same else "near_duplicate"
            removed[kind].append((records[i], f"duplicates line {first.line}"))
            gone.add(i)
    kept = [r for i, r in enumerate(records) if i not in gone]
    return kept, removed
