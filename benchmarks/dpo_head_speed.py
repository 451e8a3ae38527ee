"""Lesson 06's DPO steps with TRL's fused LM head and with the course's: `python benchmarks/dpo_head_speed.py`.

Trains the `tiny` profile's model with lesson 06's DPO settings (a LoRA adapter, pairs from
data/tickets/preferences.jsonl) for `--steps` steps twice, once with TRL's `DPOTrainer` (its fused LM head scores
every position off a Triton GPU) and once with `course_lib.dpo.PlainHeadDPOTrainer` (the head applied to the
answer positions alone), and prints each one's seconds per step, the first step left out (warm-up), and the ratio.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from datasets import Dataset  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from trl import DPOTrainer  # noqa: E402

from course_lib import dpo, lora  # noqa: E402
from course_lib.models import load_model_and_tokenizer  # noqa: E402
from course_lib.paths import data_path  # noqa: E402
from course_lib.profiles import PROFILES, set_seed  # noqa: E402


class StepClock(TrainerCallback):
    """The wall time of every optimiser step after the first."""

    def __init__(self):
        self.started, self.seconds = None, []

    def on_step_begin(self, args, state, control, **kwargs):
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step > 1:
            self.seconds.append(time.perf_counter() - self.started)


def seconds_per_step(trainer_class, steps: int) -> float:
    profile = PROFILES["tiny"]
    pairs = dpo.trl_rows(dpo.load_preferences(data_path("tickets", "preferences.jsonl")))
    set_seed(0)
    model, tokenizer = load_model_and_tokenizer(profile)
    with tempfile.TemporaryDirectory() as out:
        config = dpo.dpo_config(profile, output_dir=out, seed=0, max_steps=steps, logging_strategy="no",
                                disable_tqdm=True)
        used = Dataset.from_list(pairs[: steps * config.per_device_train_batch_size])
        clock = StepClock()
        trainer = trainer_class(model=model, args=config, train_dataset=used, processing_class=tokenizer,
                                peft_config=lora.lora_config(profile), callbacks=[clock])
        trainer.train()
    return sum(clock.seconds) / len(clock.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=11, help="DPO steps per trainer (the first is not timed)")
    args = parser.parse_args()
    fused = seconds_per_step(DPOTrainer, args.steps)
    plain = seconds_per_step(dpo.PlainHeadDPOTrainer, args.steps)
    print(f"TRL's fused LM head : {fused:.3f} s per step")
    print(f"the course's head   : {plain:.3f} s per step")
    print(f"fused / course's    : {fused / plain:.2f}x")


if __name__ == "__main__":
    main()
