"""The README's quick start and curriculum stay true."""

import re

from course_lib.nbtools import lessons

from repo_files import ROOT

README = (ROOT / "README.md").read_text()


def test_quick_start_shows_the_two_commands_first():
    first_block = re.search(r"```bash\n(.*?)```", README, re.DOTALL).group(1)
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make lab", "make test"]


def test_ci_runs_the_readme_test_command_and_nothing_else():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line and not line.startswith(("#", "set "))]
    assert lines == ["make test"]


def test_curriculum_table_lists_every_lesson_notebook():
    listed = re.findall(r"^\| (\d\d[a-z]?) \| `notebooks/([^`]+)` \|", README, re.MULTILINE)
    assert [name for _, name in listed] == [name for name, _ in lessons()]
    assert all(name.startswith(number) for number, name in listed)


def test_every_folder_has_a_readme():
    for folder in ["course_lib", "notebooks", "exercises", "solutions", "data", "tests"]:
        assert (ROOT / folder / "README.md").is_file(), f"{folder}/README.md"
