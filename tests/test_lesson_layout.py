"""Every lesson has the same layout: the header template, numbered sections, short code cells, a closing "Next:"."""

import copy
import re

import nbformat
import pytest

from course_lib.profiles import PROFILES

from repo_files import ROOT

LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
MAX_CODE_LINES = 30  # a code cell does one job; a longer one is split, with a line of markdown for each part
TABLE_HEADER = "| profile | model | measured run time |"
SECTION = re.compile(r"^## (\d+)\. \S")
OTHER_SECTIONS = ("## Summary", "## Exercises")  # the only unnumbered sections, after the numbered ones
LESSON_ID = r"\d\d[a-z]?"  # a lesson is its notebook's number: "04", or "05a" and "05b" for a lesson in two halves
LESSON_REFERENCE = re.compile(rf"\b[Ll]essons? ({LESSON_ID})\b(?:(?:, | and | to | or )({LESSON_ID})\b)*")
PROMISES = re.compile(r"\b(coming soon|future lessons?|risk lessons?|later lessons? will)\b", re.IGNORECASE)


def lesson_of(path) -> str:
    """The lesson a notebook holds, from its file name: "04" for 04_lora.ipynb, "05a" for 05a_4bit_formats.ipynb."""
    return path.name.split("_")[0]


def lessons_named(text: str) -> set[str]:
    """The lessons that `text` names: "lesson 04", "lessons 03 to 06", "lessons 01 and 03", "lesson 05b"."""
    found = set()
    for match in LESSON_REFERENCE.finditer(text):
        found.update(re.findall(LESSON_ID, match.group(0)))
    return found


def exists(named: str, existing: set[str]) -> bool:
    """A named lesson exists as a notebook, or, named by its number alone ("lesson 05"), as its halves (05a, 05b)."""
    return named in existing or any(lesson[:2] == named for lesson in existing)


def header_problems(lesson: str, text: str) -> list[str]:
    """What the first cell lacks of the header template: title, prerequisites, objectives, run time per profile."""
    found = []
    lines = text.splitlines()
    if not lines or not re.match(rf"# {lesson} · \S", lines[0]):
        found.append(f"the first line should be the title '# {lesson} · ...'")
    if not any(line.startswith("**Prerequisites:** ") for line in lines):
        found.append("no '**Prerequisites:** ...' line (write 'none' for a lesson that has none)")
    if "**You will:**" not in lines:
        found.append("no '**You will:**' line before the objectives")
    else:
        after = [line for line in lines[lines.index("**You will:**") + 1:] if line.strip()]
        if not after or not after[0].startswith("- "):
            found.append("'**You will:**' is not followed by a list of objectives")
    if "**Run time** per profile:" not in lines or TABLE_HEADER not in lines:
        found.append(f"no run-time table ('**Run time** per profile:' and '{TABLE_HEADER}')")
        return found
    rows = [line for line in lines[lines.index(TABLE_HEADER) + 2:] if line.startswith("|")]
    for name, profile in PROFILES.items():
        row = next((r for r in rows if f"`{name}`" in r.split("|")[1]), None)
        minutes = profile.minutes.get(lesson)
        if row is None:
            found.append(f"the run-time table has no row for the `{name}` profile")
        elif minutes is not None and f"about {minutes:g} minute" not in row.split("|")[3]:
            found.append(f"the `{name}` row should state the measured 'about {minutes:g} minute(s)' "
                         "(course_lib/profiles.py)")
        elif minutes is None and "not measured yet" not in row.split("|")[3]:
            found.append(f"the `{name}` row should say 'not measured yet': profiles.py has no run time for it")
    return found


def layout_problems(nb, lesson: str, existing: set[str]) -> list[str]:
    """Everything in `nb`, lesson `lesson` (e.g. "04"), that breaks the lesson layout; `existing`: every lesson."""
    cells = nb.cells
    found = []
    if not cells or cells[0].cell_type != "markdown":
        return ["the first cell should be the markdown header"]
    found += [f"header: {problem}" for problem in header_problems(lesson, cells[0].source)]

    headings = [line for c in cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("## ")]
    numbers = [int(SECTION.match(h).group(1)) for h in headings if SECTION.match(h)]
    if numbers != list(range(1, len(numbers) + 1)):
        found.append(f"sections should be numbered 1, 2, 3, ... without gaps; found {numbers}")
    unnumbered = [h for h in headings if not SECTION.match(h)]
    if [h for h in unnumbered if h not in OTHER_SECTIONS] or "## Summary" not in unnumbered:
        found.append(f"besides numbered sections, only {' and '.join(OTHER_SECTIONS)} (Summary required); "
                     f"found {unnumbered}")

    last = cells[-1]
    if last.cell_type != "markdown" or not last.source.startswith("**Next:** "):
        found.append("the last cell should be a markdown cell starting '**Next:** '")
    else:
        following = sorted(n for n in existing if n > lesson)
        named = lessons_named(last.source)
        # the next lesson by its name, or by its number when that is another lesson's ("lesson 05" after 04)
        by_number = bool(following) and following[0][:2] in named and following[0][:2] != lesson[:2]
        if following and following[0] not in named and not by_number:
            found.append(f"'Next:' should point to lesson {following[0]}, the next lesson")
        if not following and {n for n in named if n > lesson}:
            found.append("'Next:' promises a lesson that does not exist")

    for i, cell in enumerate(cells):
        if cell.cell_type == "code" and len(cell.source.splitlines()) > MAX_CODE_LINES:
            found.append(f"cell {i} has {len(cell.source.splitlines())} lines, more than {MAX_CODE_LINES}: split it")
        if cell.cell_type == "markdown":
            missing = sorted(n for n in lessons_named(cell.source) if not exists(n, existing))
            if missing:
                found.append(f"cell {i} names lesson(s) {', '.join(missing)}, which do not exist")
            promise = PROMISES.search(cell.source)
            if promise:
                found.append(f"cell {i} promises content that does not exist: {promise.group(0)!r}")
    return found


EXISTING = {lesson_of(path) for path in LESSONS}


def test_the_lessons_are_found():
    assert len(LESSONS) >= 8 and min(EXISTING) == "00"
    assert all(re.fullmatch(LESSON_ID, lesson) for lesson in EXISTING), sorted(EXISTING)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_lesson_follows_the_layout(path):
    found = layout_problems(nbformat.read(path, as_version=4), lesson_of(path), EXISTING)
    assert not found, f"{path.relative_to(ROOT)}:\n" + "\n".join(found)


def lesson_04():
    return nbformat.read(ROOT / "notebooks" / "04_lora.ipynb", as_version=4)


def broken(change):
    """Lesson 04 with one thing changed by `change(nb)`."""
    nb = copy.deepcopy(lesson_04())
    change(nb)
    return nb


def edit_header(old, new):
    def change(nb):
        assert old in nb.cells[0].source
        nb.cells[0].source = nb.cells[0].source.replace(old, new)
    return change


def code_cell_of(lines):
    return nbformat.v4.new_code_cell("\n".join(f"x{i} = {i}" for i in range(lines)))


BROKEN = {
    "a title without the lesson's number": (edit_header("# 04 · ", "# LoRA · "), "the first line should be the title"),
    "no prerequisites": (edit_header("**Prerequisites:**", "Before:"), "no '**Prerequisites:** ...' line"),
    "no objectives": (edit_header("**You will:**", "In this lesson:"), "no '**You will:**' line"),
    "no run-time table": (edit_header(TABLE_HEADER, "| profile | run time |"), "no run-time table"),
    "a run time other than the measured one": (edit_header("about 5 minutes", "about 9 minutes"),
                                               "should state the measured 'about 5 minute(s)'"),
    "a GPU run time that was never measured": (edit_header("not measured yet", "about 1 minute"),
                                                "should say 'not measured yet'"),
    "a gap in the section numbers": (lambda nb: nb.cells.insert(5, nbformat.v4.new_markdown_cell("## 9. Extra")),
                                     "without gaps"),
    "an unnumbered section": (lambda nb: nb.cells.insert(5, nbformat.v4.new_markdown_cell("## Aside")),
                              "besides numbered sections"),
    "no closing Next: cell": (lambda nb: nb.cells.pop(), "the last cell should be a markdown cell starting"),
    "Next: skipping a lesson": (lambda nb: setattr(nb.cells[-1], "source", "**Next:** lesson 06 is about DPO."),
                                "should point to lesson 05"),
    "a code cell too long": (lambda nb: nb.cells.insert(4, code_cell_of(MAX_CODE_LINES + 1)), "split it"),
    "a lesson that does not exist": (lambda nb: nb.cells.insert(4, nbformat.v4.new_markdown_cell(
        "Lesson 42 comes back to this.")), "names lesson(s) 42, which do not exist"),
    "a promise": (lambda nb: nb.cells.insert(4, nbformat.v4.new_markdown_cell("The risk lessons measure it.")),
                  "promises content that does not exist"),
}


def test_lesson_04_as_committed_has_no_problem():
    assert layout_problems(lesson_04(), "04", EXISTING) == []


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_layout_is_named(case):
    change, expected = BROKEN[case]
    found = "\n".join(layout_problems(broken(change), "04", EXISTING))
    assert expected in found, found


def test_the_last_lesson_promises_no_next_one():
    nb = broken(lambda nb: setattr(nb.cells[-1], "source", "**Next:** lesson 08 measures what breaks."))
    found = "\n".join(layout_problems(nb, "07", EXISTING))
    assert "promises a lesson that does not exist" in found and "names lesson(s) 08" in found


def test_a_code_cell_of_exactly_the_limit_is_allowed():
    nb = broken(lambda nb: nb.cells.insert(4, code_cell_of(MAX_CODE_LINES)))
    assert layout_problems(nb, "04", EXISTING) == []


def test_lesson_numbers_are_read_from_ranges_and_lists():
    assert lessons_named("lessons 03 to 06 and lesson 01; Lesson 07") == {"01", "03", "06", "07"}
    assert lessons_named("lessons 01, 03 and 05b") == {"01", "03", "05b"}
    assert lessons_named("lesson 05a's blocks, not lesson 0512") == {"05a"}


def test_a_lesson_in_two_halves_is_named_by_either_half_or_its_number():
    halves = {"04", "05a", "05b", "06"}
    assert exists("05", halves) and exists("05b", halves) and not exists("05c", halves) and not exists("07", halves)
    next_cell = "**Next:** lesson {} trains on 4 bits."
    for lesson, next_one, ok in [("04", "05", True), ("04", "05a", True), ("04", "05b", False), ("05a", "05b", True),
                                 ("05a", "05", False), ("05a", "06", False), ("05b", "06", True)]:
        nb = broken(lambda nb, n=next_one: setattr(nb.cells[-1], "source", next_cell.format(n)))
        found = [p for p in layout_problems(nb, lesson, halves) if "'Next:'" in p]
        assert (found == []) == ok, (lesson, next_one, found)
