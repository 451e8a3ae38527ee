"""The tiny profile's model as the training tests start from it: shipped weights, seeded, with or without an adapter."""

import torch

from course_lib.models import load_model_and_tokenizer
from course_lib.profiles import PROFILES, set_seed

TINY = PROFILES["tiny"]


def fresh_model():
    """The tiny model as shipped, seeded, so that every run starts from the same weights."""
    set_seed(0)
    return load_model_and_tokenizer(TINY)[0]


def with_adapter(model, config):
    """`model` under a fresh peft adapter whose B matrices are drawn too (peft starts them at 0, a no-op adapter)."""
    from peft import get_peft_model

    torch.manual_seed(0)  # the A matrices, then the B matrices
    model = get_peft_model(model, config)
    for name, weight in model.named_parameters():
        if "lora_B" in name:
            weight.data.normal_(0, 0.1)
    return model
