"""Run plumbing every training lesson shares: settings, callbacks, train and resume, the saved-run cache.

Introduced with lesson 03's full fine-tuning and reused by the LoRA, QLoRA and DPO lessons:

- `step_budget`, `run_settings`: the step budget and the settings every TRL trainer config shares, from the profile;
- callbacks: `LossPlotCallback`, `ThroughputCallback`, `PeakMemoryCallback`, `StopAtStepCallback`, and
  `calm_progress`, a notebook progress bar that redraws every few seconds;
- `train`: trains, resuming from the last checkpoint in `output_dir` when it was saved with the same settings, and
  saving a checkpoint on Ctrl-C;
- the saved-run cache: `save_model`, `load_saved`, `write_settings`, `saved_with` and `saved_run_lock`, under which
  two processes that want the same saved model at once train it once;
- `saved_run` and `SavedRun`: the one shape of every method's `load_or_train` (`training`, `lora`, `quantization`,
  `dpo`): load the saved model when its settings match, else train it, and say which happened.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import Trainer, TrainerCallback

from course_lib.checks import whole_number
from course_lib.colab import in_colab
from course_lib.models import load_local_model
from course_lib.paths import build_path, course_root
from course_lib.profiles import Profile, course_seed

COLAB_PERSISTENT_DIR = "/content/drive"  # Google Drive, once mounted; everything else on Colab is lost with the runtime


# ---------------------------------------------------------------------------------------------------------
# 1) Settings every trainer config shares


def warn_if_not_persistent(output_dir: str | Path) -> bool:
    """On Colab, warn (and return True) when checkpoints would go to disk that is lost with the runtime.

    The config builders call it only for runs that save checkpoints (`save_strategy` other than "no").
    """
    if not in_colab():
        return False
    path = Path(output_dir).expanduser().resolve()
    if path == Path(COLAB_PERSISTENT_DIR) or Path(COLAB_PERSISTENT_DIR) in path.parents:
        return False
    warnings.warn(
        f"output_dir={str(output_dir)!r} is on the Colab runtime's own disk, which is wiped when the runtime "
        "disconnects, and with it every checkpoint. To be able to resume, mount Google Drive "
        "(from google.colab import drive; drive.mount('/content/drive')) and pass "
        f"output_dir='{COLAB_PERSISTENT_DIR}/MyDrive/<run name>'.",
        UserWarning,
        stacklevel=3,
    )
    return True


def has_tensorboard() -> bool:
    """True when a TensorBoard writer (tensorboard or tensorboardX) is installed."""
    from importlib.util import find_spec

    return find_spec("tensorboard") is not None or find_spec("tensorboardX") is not None


def step_budget(profile: Profile, lesson: str, max_steps: int | None = None) -> int:
    """`max_steps` when given (a whole number of at least 1), else the profile's step budget for `lesson`. Lesson 03.

    Every function that takes `max_steps` reads it here, so that 0 or -1 is an error rather than "the profile's
    budget" or (in transformers) "train by epochs".
    """
    if max_steps is not None:
        default = (f"max_steps=None for the profile's budget of {profile.max_steps[lesson]} steps"
                   if lesson in profile.max_steps else "a positive number")
        return whole_number("max_steps", max_steps,
                            f"Pass the number of optimiser steps, e.g. max_steps=20, or {default}.")
    if lesson not in profile.max_steps:
        raise KeyError(
            f"Profile {profile.name!r} has no step budget for lesson {lesson!r} (it has {sorted(profile.max_steps)}). "
            f"Add one to PROFILES[{profile.name!r}].max_steps in course_lib/profiles.py, or pass max_steps=..."
        )
    return profile.max_steps[lesson]


def run_settings(profile: Profile, lesson: str, *, output_dir: str | Path | None, seed: int,
                 tensorboard: bool = False, max_steps: int | None = None) -> dict[str, Any]:
    """The settings every TRL trainer config of the course shares, from the profile. Lessons 03 and 06.

    Precision, device, batch size, sequence length, schedule, logging and seeds; `sft_config` and
    `dpo.dpo_config` add what is particular to their method. `max_steps=None` is the profile's budget (`step_budget`).
    """
    max_steps = step_budget(profile, lesson, max_steps)
    if tensorboard and not has_tensorboard():
        raise ImportError(
            "tensorboard=True, but the tensorboard package is not installed. Install it with "
            "`pip install tensorboard`, or leave tensorboard=False and read the loss from the live plot."
        )
    if output_dir is None:
        output_dir = build_path(f"run_{lesson}")
    return dict(
        output_dir=str(output_dir),
        # precision: TRL 1.x defaults to bf16=True; follow the profile instead. fp16/bf16 mean autocast in 16 bits
        # over float32 master weights (sft_trainer and the DPO trainer make the trainable parameters float32)
        bf16=profile.dtype == "bfloat16",
        fp16=profile.dtype == "float16",
        # memory: TRL 1.x defaults to gradient checkpointing on; it only pays off on a GPU. Transformers 5 renamed
        # it activation_checkpointing; both are set so neither default applies.
        activation_checkpointing=profile.needs_cuda,
        gradient_checkpointing=profile.needs_cuda,
        use_cpu=not profile.needs_cuda,  # the tiny profile trains on the CPU even where a GPU exists
        max_length=profile.max_length,  # longer examples are truncated; preflight refuses them first
        # how long and how fast
        per_device_train_batch_size=profile.batch_size,
        per_device_eval_batch_size=profile.batch_size,
        gradient_accumulation_steps=1,
        max_steps=max_steps,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, max_steps // 20),
        weight_decay=0.0,
        # what is logged
        logging_steps=max(1, min(10, max_steps // 20)),
        logging_first_step=True,
        report_to=["tensorboard"] if tensorboard else "none",  # TensorBoard writes to output_dir/runs/
        disable_tqdm=False,
        # reproducibility
        seed=course_seed(seed),  # shifted by COURSE_SEED
        data_seed=course_seed(seed),
        dataloader_num_workers=0,
    )




# ---------------------------------------------------------------------------------------------------------
# 5) Callbacks


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where a figure can be redrawn in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


class LossPlotCallback(TrainerCallback):
    """Records train and eval loss per step; in a notebook, redraws one live figure of both. Lesson 03."""

    def __init__(self, live: bool | None = None, every: int = 1):
        self.train: list[tuple[int, float]] = []  # (step, training loss)
        self.eval: list[tuple[int, float]] = []  # (step, eval loss)
        self.live = in_notebook() if live is None else live  # draw only where a figure can be shown
        self.every = every  # redraw every this many log events
        self._logs = 0
        self._figure = None
        self._handle = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.eval.append((state.global_step, float(logs["eval_loss"])))
        self._logs += 1
        if self.live and self._logs % self.every == 0:
            self.draw()

    def on_train_end(self, args, state, control, **kwargs):
        if self.live:
            self.draw()

    def draw(self) -> None:
        """Draw the curves into the one figure (created on first use) and show it in place of the last drawing."""
        import matplotlib.pyplot as plt

        if self._figure is None:
            self._figure, self._axes = plt.subplots(figsize=(6, 3.5))
            plt.close(self._figure)  # shown through the display handle only, not again at the end of the cell
        ax = self._axes
        ax.clear()
        if self.train:
            ax.plot(*zip(*self.train, strict=True), label="train")
        if self.eval:
            ax.plot(*zip(*self.eval, strict=True), "o-", label="eval")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()
        ax.grid(alpha=0.3)
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self._figure, display_id=True)
        else:
            self._handle.update(self._figure)


class ThroughputCallback(TrainerCallback):
    """Optimiser steps per second and (non-padding) input tokens per second of the training run. Lesson 03.

    Time spent evaluating is left out, so the figures are the training speed alone. Needs
    `include_num_input_tokens_seen` on in the config (`sft_config` sets it).
    """

    def __init__(self):
        self.seconds = 0.0  # training time, evaluation excluded
        self.steps = 0
        self.tokens = 0
        self._t0: float | None = None
        self._tokens0 = 0
        self._step0 = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self._t0, self._tokens0, self._step0 = time.perf_counter(), state.num_input_tokens_seen, state.global_step

    def _pause(self, state):
        if self._t0 is not None:
            self.seconds += time.perf_counter() - self._t0
            self.tokens += state.num_input_tokens_seen - self._tokens0
            self.steps += state.global_step - self._step0
            self._t0 = None

    def on_evaluate(self, args, state, control, **kwargs):
        # evaluation happened since the last step: restart the clock now
        self._t0 = time.perf_counter()
        self._tokens0, self._step0 = state.num_input_tokens_seen, state.global_step

    def on_step_end(self, args, state, control, **kwargs):
        self._pause(state)
        self._t0, self._tokens0, self._step0 = time.perf_counter(), state.num_input_tokens_seen, state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        self._t0 = None

    @property
    def steps_per_second(self) -> float:
        return self.steps / self.seconds if self.seconds else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        """One line, e.g. '120 steps in 45.1 s: 2.66 steps/s, 5,120 tokens/s'."""
        return (f"{self.steps} steps in {self.seconds:.1f} s: {self.steps_per_second:.2f} steps/s, "
                f"{self.tokens_per_second:,.0f} tokens/s")


def peak_memory_bytes(device: str) -> int:
    """Peak memory so far: CUDA `max_memory_allocated` on a GPU, the process's peak RSS on the CPU."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.max_memory_allocated())
    try:
        import resource
    except ImportError:  # Windows has no getrusage: the current RSS is the best available figure
        import psutil

        return int(psutil.Process().memory_info().rss)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class PeakMemoryCallback(TrainerCallback):
    """Peak memory of training: CUDA memory allocated by tensors, or the whole process's RSS on CPU. Lesson 03.

    The CUDA counter is reset when training begins; the CPU figure is the process's peak since it started
    (the operating system keeps no resettable counter), so it includes loading the model and data.
    """

    def __init__(self):
        self.device = "cpu"
        self.peak_bytes = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.device = str(args.device)
        if self.device.startswith("cuda"):
            import torch

            torch.cuda.reset_peak_memory_stats()

    def on_step_end(self, args, state, control, **kwargs):
        self.peak_bytes = max(self.peak_bytes, peak_memory_bytes(self.device))

    def on_train_end(self, args, state, control, **kwargs):
        self.peak_bytes = max(self.peak_bytes, peak_memory_bytes(self.device))

    @property
    def kind(self) -> str:
        return "CUDA allocated" if self.device.startswith("cuda") else "process RSS"

    def summary(self) -> str:
        """One line, e.g. 'peak memory 812 MiB (process RSS)'."""
        return f"peak memory {self.peak_bytes / 2**20:,.0f} MiB ({self.kind})"


PROGRESS_EVERY_S = 5.0  # a notebook's progress bar redraws at most this often


def calm_progress(trainer: Trainer, every: float = PROGRESS_EVERY_S) -> Trainer:
    """Replaces transformers' notebook progress bar on `trainer` with one that redraws every `every` seconds.

    Its own bar redraws up to five times a second. A front-end reads each redraw as it comes, but a notebook run
    by nbval (make test) reads a cell's output only once the cell ends: past a few thousand redraws, messages are
    dropped and the run fails with "Timeout ... waiting for output". Outside a notebook (a text progress bar)
    nothing changes. `sft_trainer` and `dpo.dpo_trainer` call it.
    """
    from transformers.utils.notebook import NotebookProgressCallback

    class CalmNotebookProgress(NotebookProgressCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            self.training_tracker.update_every = every

        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)
            if self.prediction_bar is not None:
                self.prediction_bar.update_every = every

    handler = trainer.callback_handler
    if any(type(callback) is NotebookProgressCallback for callback in handler.callbacks):
        trainer.remove_callback(NotebookProgressCallback)
        trainer.add_callback(CalmNotebookProgress())
    return trainer


class StopAtStepCallback(TrainerCallback):
    """Stops training after `step`, saving a checkpoint there: an interruption, on purpose. Lesson 03."""

    def __init__(self, step: int):
        self.step = whole_number("step", step, "Pass the step to stop after, e.g. StopAtStepCallback(10).")

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            control.should_save = True
            control.should_training_stop = True


# ---------------------------------------------------------------------------------------------------------
# 6) Training, with resume


CHECKPOINT_SETTINGS_FILE = "course_run.json"  # written into each checkpoint by `train`: the settings it was saved with
# The fields of a trainer's config that decide where a run goes; a checkpoint is resumed only when they are the same
RESUME_FIELDS = ("seed", "data_seed", "learning_rate", "max_steps", "num_train_epochs", "per_device_train_batch_size",
                 "gradient_accumulation_steps", "lr_scheduler_type", "warmup_steps", "warmup_ratio", "weight_decay",
                 "optim", "max_length", "bf16", "fp16", "assistant_only_loss", "packing", "beta", "loss_type")


class ResumeError(ValueError):
    """`train(resume=True)` found a checkpoint of another run; the message says what differs and how to choose."""


def checkpoints(output_dir: str | Path) -> list[Path]:
    """The `checkpoint-<step>` folders in `output_dir`, newest (highest step) first."""
    import re

    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    found = [(int(m.group(1)), path) for path in output_dir.iterdir()
             if path.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", path.name))]
    return [path for _, path in sorted(found, reverse=True)]


def last_checkpoint(output_dir: str | Path) -> str | None:
    """The newest complete `checkpoint-<step>` folder in `output_dir`, or None. Lesson 03.

    A newer folder without `trainer_state.json` (the run was killed while saving it) is skipped, with a warning
    that names it.
    """
    from transformers.trainer import TRAINER_STATE_NAME

    for path in checkpoints(output_dir):
        if (path / TRAINER_STATE_NAME).is_file():
            return str(path)
        warnings.warn(f"{path} has no {TRAINER_STATE_NAME}: it was not saved completely (the run was probably "
                      "stopped while saving it), so it is skipped for an older checkpoint. Delete it once you no "
                      "longer need it.", UserWarning, stacklevel=2)
    return None


def _plain(value: Any) -> Any:
    """`value` as JSON would give it back: enums as their value, tuples and sets as sorted lists."""
    import json

    if isinstance(value, (set, frozenset)):
        value = sorted(map(str, value))
    return json.loads(json.dumps(getattr(value, "value", value), default=str))


def data_fingerprint(dataset) -> str | None:
    """SHA-256 of every row of a `datasets.Dataset` (None for a dataset that cannot be read row by row)."""
    import hashlib
    import json

    if dataset is None or not hasattr(dataset, "iter"):
        return None
    digest = hashlib.sha256()
    for batch in dataset.with_format(None).iter(batch_size=256):
        digest.update(json.dumps(batch, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def resume_settings(trainer) -> dict[str, Any]:
    """What decides where `trainer`'s run goes: model, method, data and the config's `RESUME_FIELDS`. Lesson 03.

    `train` writes it into each checkpoint (`course_run.json`) and resumes only from a checkpoint with the same.
    The data is `rows_fingerprint` of the rows given to `sft_trainer` (`trainer.rows_fingerprint`), else a hash
    of the trainer's training dataset.
    """
    model = trainer.model
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    name = str(getattr(base.config, "_name_or_path", "") or "")
    try:  # the tiny model by its place in the course, so that a moved course folder still resumes
        name = Path(name).resolve().relative_to(course_root().resolve()).as_posix()
    except (ValueError, OSError):
        pass
    adapter = None
    peft_config = getattr(model, "peft_config", None)
    if peft_config:
        config = peft_config[getattr(model, "active_adapter", "default")]
        adapter = {key: getattr(config, key) for key in ("peft_type", "r", "lora_alpha", "target_modules",
                                                         "trainable_token_indices", "num_virtual_tokens")
                   if getattr(config, key, None) is not None}
    quantization = getattr(base.config, "quantization_config", None)
    if quantization is not None:
        quantization = quantization if isinstance(quantization, dict) else quantization.to_dict()
        quantization = {k: v for k, v in quantization.items()
                        if k.startswith("load_in") or k in ("bnb_4bit_quant_type", "bnb_4bit_use_double_quant")}
    trainer_class = next(c.__name__ for c in type(trainer).__mro__
                         if c.__module__.split(".")[0] in ("trl", "transformers"))
    data = getattr(trainer, "rows_fingerprint", None) or data_fingerprint(getattr(trainer, "train_dataset", None))
    settings = {"model": name, "trainer": trainer_class, "adapter": adapter, "quantization": quantization,
                "data": data,
                **{key: getattr(trainer.args, key) for key in RESUME_FIELDS if hasattr(trainer.args, key)}}
    return _plain(settings)


def check_resumable(checkpoint: str | Path, settings: dict[str, Any]) -> None:
    """Raise ResumeError unless `checkpoint` was saved by a run with `settings`, saying what differs and what to do."""
    import json

    checkpoint = Path(checkpoint)
    choose = (f"To keep that run, give this one another output_dir; to train this run from the start in "
              f"{checkpoint.parent} instead, pass resume=False (its checkpoints then replace the older ones there, "
              "keeping the newest save_total_limit).")
    path = checkpoint / CHECKPOINT_SETTINGS_FILE
    try:
        saved = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResumeError(f"{checkpoint} has no {CHECKPOINT_SETTINGS_FILE}, so nothing says which settings it was "
                          "trained with (it was saved by an older course_lib, or by trainer.train() rather than "
                          f"runs.train()), and resuming it could continue another run. {choose}") from None
    except ValueError:
        raise ResumeError(f"{path} is damaged, so nothing says which settings {checkpoint.name} was trained with. "
                          f"{choose}") from None
    differ = [f"{key}: {saved.get(key)!r} in the checkpoint, {settings.get(key)!r} in this run"
              for key in sorted(set(saved) | set(settings)) if saved.get(key) != settings.get(key)]
    if differ:
        raise ResumeError(f"{checkpoint} belongs to a run with other settings, so resuming it would continue that "
                          "run instead of starting this one:\n  " + "\n  ".join(differ) + f"\n{choose}")


class RecordSettingsCallback(TrainerCallback):
    """Writes the run's `resume_settings` into each checkpoint as it is saved (`train` adds it). Lesson 03."""

    def __init__(self, settings: dict[str, Any]):
        self.settings = settings

    def on_save(self, args, state, control, **kwargs):
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if folder.is_dir():
            write_settings(folder, self.settings, name=CHECKPOINT_SETTINGS_FILE)


class StopOnInterruptCallback(TrainerCallback):
    """Turns the first Ctrl-C (SIGINT) into "save a checkpoint after this step and stop"; a second one stops at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def install(self) -> bool:
        """Catch SIGINT until `uninstall`; False (nothing caught) outside the main thread, where Python forbids it."""
        import signal
        import threading

        if threading.current_thread() is not threading.main_thread():
            return False
        self._previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.requested:  # the second Ctrl-C: stop now
                raise KeyboardInterrupt
            self.requested = True
            print("\nCtrl-C: finishing this step, then saving a checkpoint (press Ctrl-C again to stop at once)")

        signal.signal(signal.SIGINT, handler)
        return True

    def uninstall(self) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True


@dataclass
class TrainResult:
    """What a run did: its last step, last training loss, and the checkpoint it resumed from (if any)."""

    global_step: int
    final_loss: float | None  # the last logged training loss
    resumed_from: str | None


def _interrupted(trainer, settings: dict[str, Any], save: bool) -> None:
    """After Ctrl-C: save a checkpoint of the last step (unless one was just saved) and say how to resume."""
    step = trainer.state.global_step
    folder = Path(trainer.args.output_dir) / f"checkpoint-{step}"
    if step == 0:
        print("Interrupted before the first step: nothing to save.")
        return
    if save:
        trainer._save_checkpoint(trainer.model, trial=None)  # what a scheduled save does: weights, optimiser, state
        write_settings(folder, settings, name=CHECKPOINT_SETTINGS_FILE)
    print(f"Interrupted at step {step}; saved {folder}. To go on from there, build the trainer with the same "
          "settings and call runs.train(trainer, resume=True).")


def train(trainer: Trainer, resume: bool = True) -> TrainResult:
    """Train, first resuming from the newest checkpoint in `output_dir` when `resume` and one exists. Lesson 03.

    Each checkpoint gets the run's settings (`resume_settings`: model, method, data, seed, learning rate, step
    budget, batch size, ...) in `course_run.json`. A checkpoint is resumed only when they are this run's; otherwise
    `train` stops with a ResumeError that lists what differs and deletes nothing: pass another `output_dir`, or
    `resume=False` to train from the start. A newest checkpoint that was not saved completely (no
    `trainer_state.json`) is skipped, with a warning, for the newest complete one.

    Ctrl-C (or the notebook's stop button) finishes the current step, saves a checkpoint, prints how to resume and
    raises KeyboardInterrupt; a second Ctrl-C stops at once and saves the state of the last finished step.
    """
    settings = resume_settings(trainer)
    checkpoint = last_checkpoint(trainer.args.output_dir) if resume else None
    if checkpoint:
        check_resumable(checkpoint, settings)
        print(f"resuming from {checkpoint}")
    record, interrupt = RecordSettingsCallback(settings), StopOnInterruptCallback()
    trainer.add_callback(record)
    trainer.add_callback(interrupt)
    interrupt.install()
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:
        _interrupted(trainer, settings, save=True)
        raise
    finally:
        interrupt.uninstall()
        trainer.remove_callback(record)
        trainer.remove_callback(interrupt)
    if interrupt.requested:  # the checkpoint was saved at the end of the step
        _interrupted(trainer, settings, save=False)
        raise KeyboardInterrupt
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return TrainResult(trainer.state.global_step, losses[-1] if losses else None, checkpoint)


# ---------------------------------------------------------------------------------------------------------
# 7) Saved weights, reused by later lessons

SETTINGS_FILE = "course_settings.json"  # written next to saved weights: everything they were trained with


def rows_fingerprint(rows: Sequence[dict]) -> str:
    """SHA-256 of the rows' conversations: equal for the same training rows in the same order."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps([r["messages"] for r in rows], sort_keys=True).encode()).hexdigest()


def write_settings(folder: str | Path, settings: dict, name: str = SETTINGS_FILE) -> Path:
    """Write `settings` as `course_settings.json` (or `name`) into `folder` (next to the weights saved there)."""
    import json

    path = Path(folder) / name
    path.write_text(json.dumps(settings, indent=1) + "\n")
    return path


def saved_with(folder: str | Path, settings: dict) -> bool:
    """True when `folder` holds weights saved with exactly `settings` (its `course_settings.json` equals them)."""
    import json

    path = Path(folder) / SETTINGS_FILE
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()) == settings
    except ValueError:  # a damaged settings file: the weights cannot be trusted, train again
        return False


_LOCKS: dict[str, Any] = {}  # one lock object per saved-run folder, so that this process may take it again inside


@contextmanager
def saved_run_lock(folder: str | Path):
    """Hold `folder`'s lock while its saved run is checked, trained or written. Lesson 03.

    Every `load_or_train` checks, trains and saves under it, and `save_model` and `lora.save_adapter` write under
    it, so when two processes want the same saved model at once (`make test` runs notebooks side by side), one
    trains and the other waits, then finds the model saved and loads it; nobody reads a half-written folder. The
    lock is the file `<folder>.lock` beside the folder. This process may take a lock it already holds.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    path = str(folder.with_name(folder.name + ".lock"))
    lock = _LOCKS.setdefault(path, FileLock(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another process that is training or saving {folder} ...", flush=True)
        lock.acquire()
    try:
        yield folder
    finally:
        lock.release()


def forget_settings(folder: str | Path) -> None:
    """Delete `folder`'s settings file before new weights are written there: until then it matches no settings."""
    (Path(folder) / SETTINGS_FILE).unlink(missing_ok=True)


def save_model(model, tokenizer, folder: str | Path, settings: dict) -> Path:
    """Save a fine-tuned model and its tokenizer (safetensors) to `folder`, with its settings. Lesson 03.

    The settings are written last, so a folder whose settings match holds complete weights (`saved_with`).
    """
    with saved_run_lock(folder) as folder:
        forget_settings(folder)
        model.save_pretrained(str(folder), safe_serialization=True)
        tokenizer.save_pretrained(str(folder))
        write_settings(folder, settings)
    return folder


def load_saved(profile: Profile, folder: str | Path):
    """A full model and tokenizer saved by `save_model`, on the profile's device, in eval mode."""
    model, tokenizer = load_local_model(folder, dtype=profile.dtype)
    return (model.to("cuda") if profile.needs_cuda else model).eval(), tokenizer


@dataclass(frozen=True)
class SavedRun:
    """What every `load_or_train` returns: the model and tokenizer, and whether they were loaded or trained now.

    `model` is in eval mode. It is None only when a QLoRA run stopped at its `stop_at` step with a checkpoint saved
    (`finished` is False): calling `quantization.load_or_train` again goes on from there.
    """

    model: Any  # the saved or trained model, in eval mode; None while a run stopped at `stop_at` is unfinished
    tokenizer: Any
    trained: bool  # True when this call trained (all or part of the run), False when it loaded the saved model
    message: str  # what happened, in words, e.g. "loaded from build/03_full_sft/model"

    @property
    def finished(self) -> bool:
        """True when there is a model to use: loaded, or trained to the end of its step budget."""
        return self.model is not None


def saved_run(folder: str | Path, settings: dict, *, load: Callable[[Path], tuple[Any, Any]],
              train: Callable[[Path], SavedRun]) -> SavedRun:
    """The run saved in `folder` if it was saved with exactly `settings`; else `train(folder)`'s. Lesson 03.

    Every method's `load_or_train` is this call: `load(folder)` returns the saved (model, tokenizer), and
    `train(folder)` trains, saves the weights with `settings` in `folder` and returns the `SavedRun`. Both run under
    `saved_run_lock(folder)`, so two processes that want the same run at once train it once. The model comes back
    in eval mode.
    """
    with saved_run_lock(folder) as folder:
        if saved_with(folder, settings):
            model, tokenizer = load(folder)
            run = SavedRun(model, tokenizer, trained=False, message=f"loaded from {folder}")
        else:
            run = train(folder)
    if run.model is not None:
        run.model.eval()
    return run
