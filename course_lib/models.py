"""Load the model and tokenizer of the active profile. Introduced in lesson 00.

`tiny` loads the course's own chat model from `data/models/tiny-chat` (fully offline); GPU profiles load
a Hub model in the profile's dtype. Loading is always safetensors-only and never runs code from a model
repository (`trust_remote_code` stays off).
"""

from __future__ import annotations

from pathlib import Path

from course_lib.profiles import Profile

REBUILD_COMMAND = "python -m course_lib.tinymodel build"
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


class ModelFileError(FileNotFoundError):
    """A local model folder lacks a file or holds a damaged one; the message names it and how to rebuild."""


def check_model_folder(folder: Path) -> None:
    """Raise ModelFileError unless `folder` holds every model file and the weights file reads as safetensors."""
    from safetensors import safe_open

    for name in MODEL_FILES:
        if not (folder / name).is_file():
            raise ModelFileError(
                f"{folder / name} is missing. Rebuild the tiny model with `{REBUILD_COMMAND}` "
                f"from the course folder, or restore it with `git checkout -- {folder}`."
            )
    weights = folder / "model.safetensors"
    try:
        with safe_open(str(weights), framework="pt") as f:
            for key in f.keys():
                f.get_tensor(key)
    except Exception as err:  # safetensors raises its own error types for truncated or garbled files
        raise ModelFileError(
            f"{weights} is damaged and cannot be read as safetensors ({type(err).__name__}: {err}). "
            f"Rebuild the tiny model with `{REBUILD_COMMAND}`, or restore it with `git checkout -- {weights}`."
        ) from None


def load_local_model(folder: Path | str, dtype: str = "float32"):
    """Model and tokenizer from a local folder, offline, safetensors only; errors name the bad file."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(folder)
    check_model_folder(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except Exception as err:
        raise ModelFileError(
            f"The tokenizer in {folder} (tokenizer.json, tokenizer_config.json) cannot be loaded: {err}. "
            f"Rebuild it with `{REBUILD_COMMAND}`."
        ) from None
    try:
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=getattr(torch, dtype), use_safetensors=True, local_files_only=True, trust_remote_code=False
        )
    except Exception as err:
        raise ModelFileError(
            f"The model in {folder} (config.json, model.safetensors) cannot be loaded: {err}. Rebuild it with `{REBUILD_COMMAND}`."
        ) from None
    model.eval()
    return model, tokenizer


def load_model_and_tokenizer(profile: Profile, device: str | None = None):
    """Model and tokenizer for `profile`: the local tiny model, or a Hub model in the profile's dtype."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if profile.is_local_model:
        model, tokenizer = load_local_model(profile.model_location, dtype=profile.dtype)
    else:
        tokenizer = AutoTokenizer.from_pretrained(profile.model, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(
            profile.model, dtype=getattr(torch, profile.dtype), use_safetensors=True, trust_remote_code=False
        )
        tokenizer.padding_side = "left"  # generation pads on the left
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
    device = device or ("cuda" if profile.needs_cuda else "cpu")
    return model.to(device), tokenizer
