"""Load the model and tokenizer of the active profile. Introduced in lesson 00.

`tiny` loads the course's own chat model from `data/models/tiny-chat` (fully offline); GPU profiles load
a Hub model in the profile's dtype. Loading is always safetensors-only and never runs code from a model
repository (`trust_remote_code` stays off).
"""

from __future__ import annotations

from pathlib import Path

from course_lib.chat import CHATML_TEMPLATE, EOS, GENERATION_MARKER, START
from course_lib.paths import data_path
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
            f"The model in {folder} (config.json, model.safetensors) cannot be loaded: {err}. Rebuild it with "
            f"`{REBUILD_COMMAND}`."
        ) from None
    model.eval()
    return model, tokenizer


PAD_CANDIDATES = ("<|endoftext|>", "<|pad|>", "<pad>", "<|finetune_right_pad_id|>")  # existing tokens used to pad


def prepare_tokenizer(tokenizer) -> list[str]:
    """Make a Hub tokenizer ready for the course's training and generation; returns each change, in words. Lesson 03.

    1) padding on the left, for batched generation;
    2) a pad token distinct from EOS: an existing special token from PAD_CANDIDATES, else the unknown token. TRL's
       collator masks padding by position, so pad = EOS would still train on the EOS; a collator that masks by token
       id (transformers' DataCollatorForLanguageModeling) would mask every EOS, and the model would never be trained
       to stop. A distinct pad is safe with both;
    3) a chat template with `{% generation %}` markers, for assistant-only loss: models that speak ChatML get the
       course's CHATML_TEMPLATE. Anything else is left for `training.preflight` to report with its fix.
    """
    changes = []
    if tokenizer.padding_side != "left":
        tokenizer.padding_side = "left"
        changes.append("pads on the left, for batched generation")
    if tokenizer.pad_token is None or tokenizer.pad_token_id == tokenizer.eos_token_id:
        vocab = tokenizer.get_vocab()
        spare = [t for t in PAD_CANDIDATES if t in vocab and vocab[t] != tokenizer.eos_token_id]
        if tokenizer.unk_token is not None and tokenizer.unk_token_id != tokenizer.eos_token_id:
            spare.append(tokenizer.unk_token)
        if spare:
            before = tokenizer.pad_token
            tokenizer.pad_token = spare[0]
            changes.append(f"pad token {before!r} -> {spare[0]!r}, so that padding is never the end-of-turn token")
    template = tokenizer.chat_template if isinstance(tokenizer.chat_template, str) else None
    speaks_chatml = template is not None and START in template and EOS in template  # its template writes ChatML turns
    if speaks_chatml and not GENERATION_MARKER.search(template):
        tokenizer.chat_template = CHATML_TEMPLATE
        changes.append("chat template -> the course's ChatML template with {% generation %} markers")
    return changes


# The tiny model has no template but the course's, so lesson 03 stands in a real one: the `chat_template` of
# Qwen/Qwen2.5-1.5B-Instruct's tokenizer_config.json (the large profile's model; Apache-2.0), written out as Jinja
STAND_IN_TEMPLATE = ("templates", "qwen2.5-instruct.jinja")


def native_chat_template(profile: Profile) -> tuple[str, str]:
    """The chat template `profile`'s model ships with, and where it comes from, in words. Lesson 03.

    A Hub model's template is read from its tokenizer as published, before `prepare_tokenizer` replaces it with the
    course's ChatML (the tokenizer files are already in the Hub cache once the model has loaded). For the tiny model,
    which has no template of its own, it is Qwen2.5's instruct template from `data/templates/`.
    """
    if profile.is_local_model:
        path = data_path(*STAND_IN_TEMPLATE)
        return path.read_text(encoding="utf-8"), f"data/{'/'.join(STAND_IN_TEMPLATE)} (Qwen2.5-Instruct's, standing in)"
    from transformers import AutoTokenizer

    template = AutoTokenizer.from_pretrained(profile.model, trust_remote_code=False).chat_template
    if not isinstance(template, str):
        raise ValueError(f"{profile.model}'s tokenizer has no single chat template (got {type(template).__name__}); "
                         "pick one of its named templates with chat_template=... .")
    return template, f"{profile.model}'s own tokenizer, as published"


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
        for change in prepare_tokenizer(tokenizer):
            print(f"tokenizer: {change}")
    device = device or ("cuda" if profile.needs_cuda else "cpu")
    return model.to(device), tokenizer
