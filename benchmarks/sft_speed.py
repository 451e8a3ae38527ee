"""How fast full SFT of the tiny model trains: `python benchmarks/sft_speed.py [--steps 30] [--batch-size 16]`.

Trains the `tiny` profile's model on the curated tickets with the lesson 03 settings (fp32, CPU, assistant-only
loss, no system prompt; `--batches random` for TRL's random batches instead of length-grouped ones) for a few
steps and prints optimiser steps/s, training tokens/s (non-padding input tokens, evaluation
excluded) and peak memory (process RSS on the CPU). The first step is left out of the timing (warm-up).
The lesson 03 target: the full curated run trains in under 90 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from course_lib import runs, training  # noqa: E402
from course_lib.models import load_model_and_tokenizer  # noqa: E402
from course_lib.paths import data_dir  # noqa: E402
from course_lib.profiles import PROFILES, set_seed  # noqa: E402
from course_lib.tickets import load_tickets, without_system_prompt  # noqa: E402


class SkipFirstStep(runs.ThroughputCallback):
    """Throughput from the end of the first step on: the first one pays for warm-up."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 1:
            self.on_train_begin(args, state, control)
            return
        super().on_step_end(args, state, control, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="optimiser steps to time")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the tiny profile's")
    parser.add_argument("--batches", choices=["grouped", "random"], default="grouped",
                        help="grouped: the course's length-grouped batches (lesson 03); random: TRL's random batches")
    args = parser.parse_args()
    if args.batches == "random":  # the sampler SFTTrainer would use without the course's override
        training.PlainLossSFTTrainer._get_train_sampler = training.SFTTrainer._get_train_sampler

    profile = PROFILES["tiny"]
    set_seed(0)
    model, tokenizer = load_model_and_tokenizer(profile)
    rows = without_system_prompt(load_tickets(data_dir() / "tickets" / "train_curated.jsonl"))  # as lesson 03 trains
    with tempfile.TemporaryDirectory() as output_dir:
        config = training.sft_config(
            profile, output_dir=output_dir, max_steps=args.steps, save_strategy="no", disable_tqdm=True,
            logging_steps=args.steps, per_device_train_batch_size=args.batch_size or profile.batch_size,
        )
        speed, memory = SkipFirstStep(), runs.PeakMemoryCallback()
        trainer = training.sft_trainer(model, tokenizer, config, rows, callbacks=[speed, memory])
        runs.train(trainer, resume=False)
    n_tokens = [n for n, _ in training.example_lengths(tokenizer, rows)]
    print(f"profile {profile.name}: {args.batches} batches of {config.per_device_train_batch_size}, max_length "
          f"{profile.max_length}, {len(rows)} rows of {sum(n_tokens) / len(n_tokens):.0f} tokens on average")
    print(speed.summary() + " (first step excluded)")
    print(f"{memory.summary()}")
    budget = profile.max_steps["03"]
    print(f"lesson 03 budget of {budget} steps: about {budget / speed.steps_per_second:.0f} s of training")


if __name__ == "__main__":
    main()
