"""The autograder: runs submitted exercise notebooks in a sandbox and writes a score table. See `grade.py`."""
