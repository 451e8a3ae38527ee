"""The tiny profile's model as the training tests start from it: shipped weights, seeded."""

from course_lib.models import load_model_and_tokenizer
from course_lib.profiles import PROFILES, set_seed

TINY = PROFILES["tiny"]


def fresh_model():
    """The tiny model as shipped, seeded, so that every run starts from the same weights."""
    set_seed(0)
    return load_model_and_tokenizer(TINY)[0]

