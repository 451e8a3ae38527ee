"""Exact and near duplicates, and label conflicts among them.

Duplicates are judged on the user turns: a system prompt shared by every row would make all rows look alike.
Exact duplicates have the same user text after normalisation (case, spacing, Unicode form). Near duplicates are
found with MinHash LSH (datasketch) over 5-byte shingles of it, then confirmed with the exact Jaccard
similarity, so the threshold means what it says.

Two kinds of shared text would make different prompts look alike, and are set aside before comparing:
- boilerplate: a passage (a line or a sentence) that recurs in many rows, such as a tool description every
  prompt carries or a template's instructions (`Boilerplate`); what varies is compared, not the template;
- numbers: a math problem and its inverse share most words but not their numbers, so two prompts whose sets
  of numbers differ are never near duplicates.

Memory stays small on large files: each row keeps its MinHash signature (64 numbers), not its shingle set;
the shingles of a candidate pair are recomputed when the pair is confirmed.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache

import numpy as np
from datasketch import LeanMinHash, MinHash, MinHashLSH
from tqdm.auto import tqdm

from course_lib.curation.records import Record

SHINGLE = 5  # bytes per shingle (characters, for plain ASCII text)
NUM_PERM = 64  # MinHash permutations: more is more precise and slower (exact Jaccard confirms every pair anyway)
SEED = 1  # seed of the MinHash permutations
CANDIDATE_MARGIN = 0.15  # LSH looks this far below the threshold so that borderline pairs are not missed
SCREEN_MARGIN = 0.1  # candidates whose MinHash estimate is this far below the threshold skip the exact check
BOILERPLATE_SHARE = 0.1  # a passage in at least this share of the rows is boilerplate ...
BOILERPLATE_MIN_ROWS = 20  # ... and in at least this many rows (a small file has no boilerplate to learn)
BOILERPLATE_MIN_CHARS = 12  # shorter passages ("Thanks!", "Hi,") are ordinary words, never boilerplate
PASSAGE_BREAK = re.compile(r"\n+|(?<=[.!?])\s+")  # lines, and sentences within them
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


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


def numbers(text: str) -> frozenset[str]:
    """The numbers written in `text`, as a set of their digits ("450,000" is "450000"; a stray dot is no new number)."""
    return frozenset(re.sub(r"[.,]", "", n) for n in NUMBER.findall(text))


def _passage_key(passage: str) -> int:
    return int.from_bytes(hashlib.blake2b(normalise(passage).encode("utf-8"), digest_size=8).digest(), "little")


class Boilerplate:
    """The passages that recur in many rows of a data set, and each text with them taken out.

    A passage is a line, or a sentence within a line. One that occurs in at least BOILERPLATE_SHARE of the
    rows (and BOILERPLATE_MIN_ROWS rows) and has BOILERPLATE_MIN_CHARS characters or more is boilerplate.
    Only 8-byte hashes of the passages are counted, so the memory is small.
    """

    def __init__(self, texts: Sequence[str]):
        counts: Counter[int] = Counter()
        for text in texts:
            counts.update({_passage_key(p) for p in PASSAGE_BREAK.split(text)
                           if len(p.strip()) >= BOILERPLATE_MIN_CHARS})
        floor = max(BOILERPLATE_MIN_ROWS, BOILERPLATE_SHARE * len(texts))
        self.common = frozenset(key for key, n in counts.items() if n >= floor)

    def strip(self, text: str) -> str:
        """`text` without its boilerplate passages; the whole text when nothing else is left."""
        if not self.common:
            return text
        parts = PASSAGE_BREAK.split(text)
        kept = [p for p in parts if len(p.strip()) < BOILERPLATE_MIN_CHARS or _passage_key(p) not in self.common]
        if len(kept) == len(parts):
            return text
        rest = " ".join(kept)
        return rest if rest.strip() else text


def exact_duplicates(texts: Sequence[str]) -> list[list[int]]:
    """Groups (indices into `texts`, in order) of texts identical after normalisation; only groups of 2 or more."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(fingerprint(text), []).append(i)
    return [g for g in groups.values() if len(g) > 1]


class _Compared:
    """What near-duplicate detection compares for each text: its varying part, shingles (on demand) and signature."""

    def __init__(self, texts: Sequence[str], num_perm: int, seed: int, discount: bool):
        self.texts = texts
        self.boilerplate = Boilerplate(texts) if discount else None
        self.empty = MinHash(num_perm=num_perm, seed=seed, hashfunc=zlib.crc32)
        self.sigs = np.zeros((len(texts), num_perm), dtype=np.uint64)
        self.shingles = lru_cache(maxsize=256)(lambda i: shingles(self.varying(i)))

    def varying(self, i: int) -> str:
        text = self.texts[i]
        return self.boilerplate.strip(text) if self.boilerplate else text

    def sketches(self, progress: bool = False,
                 desc: str = "near duplicates") -> Iterator[tuple[int, LeanMinHash, bytes]]:
        """(index, MinHash, a hash of the shingle set) for every text in order; fills `sigs` as it goes."""
        for j in tqdm(range(len(self.texts)), desc=desc, unit=" rows", disable=not progress):
            s = self.shingles(j)
            h = self.empty.copy()  # copying keeps the permutations, which are slow to draw anew for every row
            h.update_batch(list(s))
            self.sigs[j] = h.hashvalues
            yield j, LeanMinHash(h), hashlib.blake2b(b"\0".join(sorted(s)), digest_size=16).digest()

    def similar(self, j: int, candidates: list[int], threshold: float) -> list[tuple[int, float]]:
        """(i, exact similarity) for candidates similar to text j: MinHash estimates screen, exact Jaccard confirms."""
        if not candidates:
            return []
        idx = np.fromiter(candidates, dtype=np.int64, count=len(candidates))
        estimates = (self.sigs[idx] == self.sigs[j]).mean(axis=1)
        out = []
        mine = numbers(self.varying(j))
        for i in idx[estimates >= threshold - SCREEN_MARGIN].tolist():
            similarity = jaccard(self.shingles(i), self.shingles(j))
            if similarity >= threshold and numbers(self.varying(i)) == mine:
                out.append((i, similarity))
        return out


def _index(num_perm: int, threshold: float) -> MinHashLSH:
    return MinHashLSH(threshold=max(0.05, threshold - CANDIDATE_MARGIN), num_perm=num_perm)


def check_threshold(threshold: float) -> float:
    """`threshold` when it is a similarity above 0 and at most 1, else a ValueError that says so."""
    if not isinstance(threshold, (int, float)) or not 0 < threshold <= 1:
        raise ValueError("the near-duplicate threshold is a Jaccard similarity above 0 and at most 1, not "
                         f"{threshold!r}")
    return float(threshold)


def near_duplicate_pairs(texts: Sequence[str], threshold: float = 0.7, num_perm: int = NUM_PERM,
                         seed: int = SEED, discount: bool = True) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every pair with Jaccard similarity >= threshold, i < j.

    With `discount`, boilerplate passages are left out and prompts with different numbers never pair (see the
    module docstring). Every pair costs time; on large files with dense clusters use `near_duplicate_links`.
    """
    check_threshold(threshold)
    compared = _Compared(texts, num_perm, seed, discount)
    lsh = _index(num_perm, threshold)
    pairs = []
    for j, lean, _ in compared.sketches():
        pairs += [(i, j, s) for i, s in compared.similar(j, sorted(lsh.query(lean)), threshold)]
        lsh.insert(j, lean, check_duplication=False)
    return sorted(pairs)


def near_duplicate_links(texts: Sequence[str], threshold: float = 0.7, num_perm: int = NUM_PERM,
                         seed: int = SEED, progress: bool = False,
                         discount: bool = True) -> list[tuple[int, int, float]]:
    """(i, j, similarity): text j near-duplicates the earlier text i, its most similar representative.

    Texts are compared only with representatives (earlier texts that duplicate nothing), so each text links
    to at most one earlier one and a cluster of a thousand copies costs a thousand comparisons, not a million.
    """
    check_threshold(threshold)
    compared = _Compared(texts, num_perm, seed, discount)
    lsh = _index(num_perm, threshold)
    links = []
    first_of: dict[tuple[bytes, frozenset], int] = {}  # exact copies link straight to their first occurrence
    for j, lean, key in compared.sketches(progress):
        key = (key, numbers(compared.varying(j)))
        if key in first_of:
            links.append((first_of[key], j, 1.0))
            continue
        found = compared.similar(j, sorted(lsh.query(lean)), threshold)
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


KEEP_RULE = "the earliest row of each cluster is kept (the one the others were matched against)"


def deduplicate(records: list[Record], *, threshold: float = 0.7, label_of: Callable[[Record], object] | None = None,
                progress: bool = False) -> tuple[list[Record], dict[str, list[tuple[Record, str]]]]:
    """Keep the earliest row of every duplicate group; with `label_of`, drop whole groups whose labels conflict.

    Without `label_of` no cluster is a conflict: two similar prompts may well have different good answers.
    Returns the kept rows and the removed ones by kind ("exact_duplicate", "near_duplicate", "label_conflict"),
    each with a reason naming the line it duplicates or conflicts with.
    """
    removed: dict[str, list[tuple[Record, str]]] = {"exact_duplicate": [], "near_duplicate": [], "label_conflict": []}
    gone: set[int] = set()
    prompts = [r.text("user") for r in records]
    # 1) near-identical prompts (exact duplicates included) form clusters around a representative
    links = near_duplicate_links(prompts, threshold=threshold, progress=progress)
    for group in clusters(len(records), links):
        first = records[group[0]]
        if label_of is not None and len({repr(label_of(records[i])) for i in group}) > 1:
            # 2) the cluster disagrees on the label: no row of it can be trusted
            for i in group:
                where = "its first row" if i == group[0] else f"line {first.line}"
                removed["label_conflict"].append(
                    (records[i],
                     f"near-identical prompts with different labels: a cluster of {len(group)} rows led by {where}"))
                gone.add(i)
            continue
        for i in group[1:]:  # 3) keep the earliest row, drop the rest
            same = fingerprint(prompts[i]) == fingerprint(prompts[group[0]])
            kind = "exact_duplicate" if same else "near_duplicate"
            removed[kind].append((records[i], f"duplicates line {first.line}"))
            gone.add(i)
    kept = [r for i, r in enumerate(records) if i not in gone]
    return kept, removed
