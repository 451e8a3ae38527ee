"""Runtime profiles: one notebook, every machine.

Introduced in lesson 00. A profile is one row of settings (model, dtype, batch size, sequence length,
learning rate per method, step budgets). Every notebook starts with `start_lesson(...)`, which picks the profile
once and prints what it picked and why; notebooks then read their settings from it and never branch on hardware.

Selection order: the `COURSE_PROFILE` environment variable, else auto-detection from the hardware.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import TypeVar

from course_lib.claims import begin_lesson
from course_lib.hardware import Hardware
from course_lib.paths import course_root

T = TypeVar("T")
PROFILE_ENV_VAR = "COURSE_PROFILE"
SEED_ENV_VAR = "COURSE_SEED"  # an offset added to every training seed, to see how much results move from seed to seed
LARGE_MIN_GPU_GB = 35.0  # a bf16 GPU needs at least this much memory for the `large` profile


@dataclass(frozen=True)
class Profile:
    """One row of settings; the table below holds every row."""

    name: str  # what COURSE_PROFILE is set to
    summary: str  # one line: which machines it is for
    model: str  # Hub id, or a path relative to the course root for a local model
    dtype: str  # float32, float16 or bfloat16: the model is loaded and computes in it; trainable weights stay float32
    needs_cuda: bool  # refuse to run without a CUDA GPU
    needs_bf16: bool  # refuse to run on a GPU without native bfloat16 (compute capability >= 8.0)
    batch_size: int  # examples per optimiser step
    max_length: int  # longest training example, in tokens
    lora_rank: int  # LoRA rank of the adapter lessons (04-06)
    lora_train_tokens: bool  # adapters also train the embedding rows of the answers' tokens (lesson 04)
    learning_rates: dict[str, float] = field(default_factory=dict)  # peak rate per method: full, lora, dpo, prompt
    max_steps: dict[str, int] = field(default_factory=dict)  # optimiser steps per training lesson
    minutes: dict[str, float] = field(default_factory=dict)  # expected run time per lesson, in minutes
    # rows a lesson evaluates on, per set (gold, dev, judge, behaviour); a set not named here: every row
    eval_rows: dict[str, int] = field(default_factory=dict)

    @property
    def is_local_model(self) -> bool:
        """True when `model` is a folder shipped with the course rather than a Hub id."""
        return self.model.startswith("data/")

    @property
    def model_location(self) -> str:
        """What `from_pretrained` takes: the absolute path of a local model, else the Hub id."""
        return str(course_root() / self.model) if self.is_local_model else self.model

    def eval_slice(self, name: str, rows: Sequence[T]) -> list[T]:
        """The first `eval_rows[name]` of `rows`, or all of them when the profile sets no limit for `name`. Lesson 01.

        On a CPU the lessons evaluate on the first rows of a set to stay within minutes; GPU profiles use every row.
        """
        limit = self.eval_rows.get(name)
        return list(rows if limit is None else rows[:limit])

    def learning_rate(self, method: str) -> float:
        """The peak learning rate of `method` on this profile: "full" (SFT), "lora" (QLoRA too), "dpo" or "prompt"
        (prompt tuning, lesson 04). Lesson 03."""
        if method not in self.learning_rates:
            raise KeyError(
                f"Profile {self.name!r} has no learning rate for method {method!r} "
                f"(it has {sorted(self.learning_rates)}). "
                f"Add one to PROFILES[{self.name!r}].learning_rates in course_lib/profiles.py."
            )
        return self.learning_rates[method]


# The profile table. Lesson keys are the lesson numbers of notebooks/, e.g. "03". Lesson 05 is split in two halves:
# `minutes` has one entry per half ("05a", "05b"), `max_steps` one for the lesson ("05", which 05b trains with).
PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        summary="any machine, no GPU needed: the course's own tiny chat model, fully offline",
        model="data/models/tiny-chat",  # built by the course itself and shipped in the repo
        dtype="float32",  # CPUs train reliably only in full precision
        needs_cuda=False,
        needs_bf16=False,
        batch_size=16,
        max_length=384,
        lora_rank=4,  # with the answer tokens' embedding rows, 3.8% of the tiny model's parameters
        lora_train_tokens=True,  # the tiny model never wrote the task's JSON: lesson 04 measures what the rows add
        learning_rates={
            # full SFT: the tiny model (pretrained at a peak of 2e-3) needs a large step to learn the task in lesson
            # 03's 180 steps (curated rows without the system prompt, cosine schedule). Chosen on dev: category
            # accuracy on the 200 dev tickets (seed 0) is 0.81 at 3e-3, 0.795 at 5e-3 and 0.53 at 8e-3; 3e-3 and
            # 5e-3 are within noise of each other, 8e-3 is past the edge, and 5e-3 is kept
            "full": 5e-3,
            # LoRA: adapters start at zero and change a small part of the model, so they take a larger step than
            # full fine-tuning. Chosen on the 200 dev tickets (rank 4 with its answer tokens trained, 300 steps):
            # category accuracy 0.84 at 5e-3, 0.84 at 1e-2 and 0.275 at 2e-2, valid JSON 1.00 at all three; 1e-2 ties
            # 5e-3, and twice it breaks the run
            "lora": 1e-2,
            # DPO with a LoRA adapter: 5e-3 wrecked the model within 50 steps (its answers turned to noise); 1e-3
            # removes most of lesson 06's habits in 20 steps, where 5e-4 needed 40
            "dpo": 1e-3,
            # prompt tuning: a soft prompt of 16 virtual tokens, 20 steps of 8 rows (lesson 04's short runs), chosen
            # on the 200 dev tickets: dev answer loss 8.23 at 3e-2, 8.19 at 0.1, 8.27 at 0.3 and 7.86 at 1.0; the
            # soft prompt is a few thousand numbers that must move far from where they start
            "prompt": 1.0,
        },
        max_steps={"03": 180, "04": 300, "05": 300, "06": 20},
        # measured on 2 CPU cores
        minutes={"00": 0.5, "01": 1, "02": 0.5, "03": 7, "04": 5, "05a": 0.5, "05b": 2.5, "06": 5, "07": 2},
        # on a CPU: 200 of the 400 gold tickets, 100 dev tickets for choosing a prompt, the judge on the first 20
        # human judgements (10 pairs), the behaviour tests on 50 tickets
        eval_rows={"gold": 200, "dev": 100, "judge": 20, "behaviour": 50},
    ),
    "t4": Profile(
        name="t4",
        summary="a CUDA GPU without bfloat16 or with under 35 GB, e.g. Colab's free T4 (16 GB) or an L4",
        model="HuggingFaceTB/SmolLM2-360M-Instruct",
        dtype="float16",  # T4s have no native bfloat16
        needs_cuda=True,
        needs_bf16=False,
        batch_size=8,
        max_length=512,
        lora_rank=16,
        lora_train_tokens=False,  # real instruct models have written JSON: embeddings stay frozen, as usual
        # the usual rates for real instruct models; soft prompts take far larger steps than adapters (Lester et al.,
        # 2021, trained theirs with Adafactor at 0.3)
        learning_rates={"full": 2e-5, "lora": 2e-4, "dpo": 5e-5, "prompt": 3e-2},
        max_steps={"03": 200, "04": 200, "05": 200, "06": 100},
        minutes={},  # not measured on this kind of GPU yet
    ),
    "large": Profile(
        name="large",
        summary="a bfloat16 GPU with 35 GB or more, e.g. an A100 or H100",
        model="Qwen/Qwen2.5-1.5B-Instruct",
        dtype="bfloat16",
        needs_cuda=True,
        needs_bf16=True,
        # fits a 40 GB A100 in every lesson (tests/test_memory.py); Qwen's 152k vocabulary makes the loss large
        batch_size=8,
        # the longest curated ticket is 269 tokens with the tiny model's 4k vocabulary; larger vocabularies need fewer
        max_length=512,
        lora_rank=16,
        lora_train_tokens=False,  # real instruct models have written JSON: embeddings stay frozen, as usual
        # the usual rates for real instruct models; soft prompts take far larger steps than adapters (Lester et al.,
        # 2021, trained theirs with Adafactor at 0.3)
        learning_rates={"full": 2e-5, "lora": 2e-4, "dpo": 5e-5, "prompt": 3e-2},
        max_steps={"03": 300, "04": 300, "05": 300, "06": 150},
        minutes={},  # not measured on this kind of GPU yet
    ),
}


class ProfileError(ValueError):
    """A profile was asked for that does not exist or cannot run on this machine."""


def auto_profile(hardware: Hardware) -> tuple[str, str]:
    """The profile name that suits `hardware`, and the reason, in words."""
    if not hardware.cuda:
        return "tiny", "no CUDA GPU found"
    gpu = f"{hardware.gpu_name} ({hardware.gpu_memory_gb:.0f} GB)"
    if hardware.bf16 and (hardware.gpu_memory_gb or 0) >= LARGE_MIN_GPU_GB:
        return "large", f"{gpu} supports bfloat16 and has at least {LARGE_MIN_GPU_GB:.0f} GB"
    if not hardware.bf16:
        return "t4", f"{gpu} has no native bfloat16"
    return "t4", f"{gpu} has under {LARGE_MIN_GPU_GB:.0f} GB"


def check_fits(profile: Profile, hardware: Hardware) -> None:
    """Raise ProfileError if `profile` cannot run on `hardware`, saying what it needs."""
    if profile.needs_cuda and not hardware.cuda:
        raise ProfileError(
            f"Profile {profile.name!r} needs a CUDA GPU, and this machine has none "
            "(torch.cuda.is_available() is False). "
            f"Use {PROFILE_ENV_VAR}=tiny here, or run on a GPU (on Colab: Runtime > Change runtime type > T4 GPU)."
        )
    if profile.needs_bf16 and not hardware.bf16:
        raise ProfileError(
            f"Profile {profile.name!r} needs a GPU with native bfloat16 (compute capability 8.0 or newer, "
            f"e.g. A100, L4, H100), and {hardware.gpu_name} has none. Use {PROFILE_ENV_VAR}=t4 on this GPU."
        )


def select_profile(hardware: Hardware, environ: dict[str, str] | None = None) -> tuple[Profile, str]:
    """The profile to use and why: `COURSE_PROFILE` if set, else the one that suits `hardware`."""
    environ = os.environ if environ is None else environ
    requested = environ.get(PROFILE_ENV_VAR, "").strip()
    if requested:
        if requested not in PROFILES:
            raise ProfileError(
                f"{PROFILE_ENV_VAR}={requested!r} is not a profile. Valid names: {', '.join(PROFILES)}. "
                f"Unset {PROFILE_ENV_VAR} to pick one from the hardware."
            )
        name, reason = requested, f"{PROFILE_ENV_VAR}={requested} is set"
    else:
        name, reason = auto_profile(hardware)
        reason = f"auto-detected: {reason}"
    profile = PROFILES[name]
    check_fits(profile, hardware)
    return profile, reason


REPORTED_LIBRARIES = ("torch", "transformers", "peft", "trl", "datasets", "bitsandbytes", "accelerate")


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries the lessons call, read without importing them."""
    versions = {}
    for name in REPORTED_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def seed_offset() -> int:
    """The whole number in `COURSE_SEED` (0 when unset): every training seed of the course is shifted by it."""
    text = os.environ.get(SEED_ENV_VAR, "").strip()
    if not text:
        return 0
    try:
        return int(text)
    except ValueError:
        raise ProfileError(f"{SEED_ENV_VAR}={text!r} is not a whole number. Set it to e.g. 1 to shift every seed "
                           f"by one, or unset it.") from None


def course_seed(seed: int) -> int:
    """The seed a run really uses: `seed` shifted by `COURSE_SEED`. Data splits and shipped files keep their seeds."""
    return seed + seed_offset()


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (with `course_seed(seed)`) so that the same run gives the same numbers."""
    import numpy as np
    import torch

    seed = course_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def go_offline() -> bool:
    """Switch the Hugging Face libraries offline unless `HF_HUB_OFFLINE` says otherwise; True when offline. Lesson 00.

    The environment variables are read when `huggingface_hub` and `datasets` are imported, so in a kernel that
    already imported them (a notebook's second run of its first cell) setting them changes nothing: the constants
    they were read into are set as well. `HF_HUB_OFFLINE=0` set by the learner is respected.
    """
    import sys

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    offline = os.environ["HF_HUB_OFFLINE"].strip().upper() in ("1", "ON", "YES", "TRUE")
    if offline:
        hub = sys.modules.get("huggingface_hub.constants")  # huggingface_hub.is_offline_mode() reads this constant
        if hub is not None:
            hub.HF_HUB_OFFLINE = True
        datasets_config = sys.modules.get("datasets.config")
        if datasets_config is not None:
            datasets_config.HF_HUB_OFFLINE = datasets_config.HF_DATASETS_OFFLINE = True
    return offline


def start_lesson(lesson: str, seed: int = 0) -> Profile:
    """Pick the profile for this machine, print what was picked and why, seed everything, and return it.

    `lesson` is the number of the notebook, e.g. "03", with the letter of a split lesson's half, e.g. "05a".
    """
    begin_lesson(lesson)  # a claims log names the lesson of every claim that follows
    hardware = Hardware.detect()
    profile, reason = select_profile(hardware)
    if not profile.needs_cuda:
        # The tiny profile never needs the Hub: make any accidental download fail loudly, not hang.
        go_offline()
    set_seed(seed)
    minutes = profile.minutes.get(lesson)
    lines = [
        f"Lesson {lesson}",
        f"  device      : {hardware.describe()}",
        f"  bf16        : {'yes' if hardware.bf16 else 'no'}",
        f"  profile     : {profile.name} ({reason})",
        f"  model       : {profile.model} ({profile.dtype})",
        f"  run time    : about {minutes:g} min on this profile" if minutes else "  run time    : not measured yet",
        f"  seed        : {seed}" + (f" + {seed_offset()} from {SEED_ENV_VAR}" if seed_offset() else ""),
        "  libraries   : " + ", ".join(f"{k} {v}" for k, v in library_versions().items()),
    ]
    print("\n".join(lines))
    return profile
