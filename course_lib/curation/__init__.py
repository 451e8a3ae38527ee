"""Data curation: validate, deduplicate, redact, filter, split without leakage, and describe a data set.

Introduced in lesson 02. Each step is a small module; `pipeline.curate` runs them in order and keeps a
record of every row it removed and why, so that nothing is dropped silently. Command line:

    python -m course_lib.curation report FILE [--format auto|messages|alpaca|sharegpt] [--map OLD=NEW]
    python -m course_lib.curation clean IN OUT [--task generic|tickets] [--no-redact] [--drop-conflicts]

FILE and IN are JSON Lines or one JSON array; `--help` lists every option.
"""

from course_lib.curation.records import CurationError, Problem, Record
from course_lib.curation.validate import CODES, validate_file

__all__ = ["CODES", "CurationError", "Problem", "Record", "validate_file"]
