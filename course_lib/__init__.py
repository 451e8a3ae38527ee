"""course_lib: the helper library of the course 'Fine-Tuning LLMs, hands-on'.

Each module holds what an earlier lesson taught, plus plumbing; see course_lib/README.md.
Importing the package is cheap: heavy libraries (torch, transformers) load only when a function needs them.
"""

from course_lib.paths import build_path, course_root, data_dir, data_path
from course_lib.profiles import PROFILES, Profile, ProfileError, set_seed, start_lesson

__all__ = ["PROFILES", "Profile", "ProfileError", "build_path", "course_root", "data_dir", "data_path", "set_seed",
           "start_lesson"]
