"""The course's own tiny pretrained chat model: build it, probe it. Introduced in lesson 00.

    python -m course_lib.tinymodel build    # pretrain into data/models/tiny-chat
    python -m course_lib.tinymodel probe    # held-out ability scores, as JSON
"""

from course_lib.tinymodel.probe import probe

__all__ = ["probe"]
