"""Precision and recall of curation's near-duplicate detection and redaction on the labelled trap sets:
`python benchmarks/curation_precision.py [--threshold 0.7]`.

The trap sets (`course_lib.curation.traps`, seeded) hold prompts behind a shared tool description, math problems
with their inverses and plain requests, with known paraphrases; and personal data beside look-alikes (arithmetic,
decimals, hex colours, code, number tables). Prints each group's figures with and without the boilerplate
discount. Targets: near-duplicate precision of 0.9 or more at the default threshold; redaction precision of 0.95
or more.
"""

from __future__ import annotations

import argparse

from course_lib.curation.dedup import near_duplicate_pairs
from course_lib.curation.pii import find_pii
from course_lib.curation.traps import near_duplicate_traps, pii_traps, score_pairs, score_pii


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    traps = near_duplicate_traps(args.seed)
    texts = [t.text for t in traps]
    for discount in (True, False):
        table = score_pairs(traps, near_duplicate_pairs(texts, threshold=args.threshold, discount=discount))
        for group, row in table.items():
            print(f"NEAR threshold {args.threshold} discount {'on ' if discount else 'off'} {group:<9} true "
                  f"{row['true']:>3} flagged {row['flagged']:>4} precision {row['precision']} recall {row['recall']}")
    pii = score_pii(pii_traps(args.seed), find_pii)
    print(f"PII {pii['hits']} hits, {pii['correct']} correct: precision {pii['precision']}; recall {pii['recall']} "
          f"of {pii['planted']} planted values")


if __name__ == "__main__":
    main()
