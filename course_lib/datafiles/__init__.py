"""The factory wing that generated `data/tickets/` and `data/probe/`: every shipped data file, from seeded code.

No lesson needs to open it. `python -m course_lib.datafiles` writes the files again; `--check` regenerates them
into a temporary folder and says whether they are byte for byte the ones shipped. See README.md.
"""
