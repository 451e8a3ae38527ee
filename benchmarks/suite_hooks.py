"""Timers that `suite_time.py` installs in the test process and in every notebook kernel it starts.

`install_when_imported()`, when `COURSE_SUITE_LOG` names a file, wraps four methods of transformers as soon as
their modules are imported, and appends one JSON line to that file per training run and per batch of generation:

- `Trainer.train`: the run's wall time, the seconds spent in `training_step` (forward and backward) and in
  `evaluate`, and the tokens of its training batches: real ones (attention mask 1) and all of them, padding included;
- `GenerationMixin.generate`: its wall time and the tokens it produced.

Each line names the test file that was running (`COURSE_SUITE_FILE`, set by the pytest plugin in `suite_time.py`;
a kernel inherits it when it starts). Nothing changes what the methods compute.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import json
import os
import sys
import time

LOG_ENV_VAR = "COURSE_SUITE_LOG"
FILE_ENV_VAR = "COURSE_SUITE_FILE"


def _write(record: dict) -> None:
    record["file"] = os.environ.get(FILE_ENV_VAR, "?")
    with open(os.environ[LOG_ENV_VAR], "a") as log:
        log.write(json.dumps(record) + "\n")


def batch_tokens(inputs) -> tuple[int, int]:
    """(real tokens, all tokens) of one training batch: every `*attention_mask` tensor's sum and size.

    A batch without an attention mask (padding-free collators) counts its `*input_ids` as real tokens.
    """
    real = total = 0
    masks = [k for k in inputs if k.endswith("attention_mask")]
    for key in masks or [k for k in inputs if k.endswith("input_ids")]:
        value = inputs[key]
        if hasattr(value, "numel"):
            total += value.numel()
            real += int(value.sum()) if key in masks else value.numel()
    return real, total


class _Run:
    def __init__(self):
        self.step_seconds = self.eval_seconds = 0.0
        self.steps = self.real = self.total = 0


_runs: list[_Run] = []  # a stack: an evaluation inside training belongs to that run


WATCHED = ("transformers.trainer", "transformers.generation.utils")  # the modules whose methods are wrapped


class _WhenImported(importlib.abc.MetaPathFinder):
    """Wraps a watched module's methods right after it is imported, so a process that never uses it pays nothing."""

    def find_spec(self, name, path, target=None):
        if name not in WATCHED or _busy:
            return None
        _busy.append(name)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            _busy.remove(name)
        run_module = spec.loader.exec_module

        def exec_module(module):
            run_module(module)
            _wrap(name, module)

        spec.loader.exec_module = exec_module
        return spec


_busy: list[str] = []


def install_when_imported() -> bool:
    """Wrap the methods now where their module is loaded already, else when it is; False when no log is named."""
    if not os.environ.get(LOG_ENV_VAR):
        return False
    for name in WATCHED:
        if name in sys.modules:
            _wrap(name, sys.modules[name])
    if not any(isinstance(finder, _WhenImported) for finder in sys.meta_path):
        sys.meta_path.insert(0, _WhenImported())
    return True


def _timed(function):
    function._suite_timed = True
    return function


def _wrap(name: str, module) -> None:
    if name == "transformers.trainer":
        _wrap_trainer(module.Trainer)
    else:
        _wrap_generate(module.GenerationMixin)


def _wrap_trainer(trainer_cls) -> None:
    if getattr(trainer_cls.train, "_suite_timed", False):
        return
    original_train, original_step, original_evaluate = (trainer_cls.train, trainer_cls.training_step,
                                                        trainer_cls.evaluate)

    @_timed
    @functools.wraps(original_train)
    def train(self, *args, **kwargs):
        run = _Run()
        _runs.append(run)
        start = time.perf_counter()
        try:
            return original_train(self, *args, **kwargs)
        finally:
            _runs.remove(run)
            _write({"kind": "train", "trainer": type(self).__name__, "seconds": time.perf_counter() - start,
                    "step_seconds": run.step_seconds, "eval_seconds": run.eval_seconds, "steps": run.steps,
                    "real_tokens": run.real, "all_tokens": run.total})

    @_timed
    @functools.wraps(original_step)
    def training_step(self, model, inputs, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original_step(self, model, inputs, *args, **kwargs)
        finally:
            if _runs:
                run = _runs[-1]
                run.step_seconds += time.perf_counter() - start
                run.steps += 1
                real, total = batch_tokens(inputs)
                run.real, run.total = run.real + real, run.total + total

    depth = [0]  # DPO and KTO call Trainer.evaluate from their own: time the outer call only

    @_timed
    @functools.wraps(original_evaluate)
    def evaluate(self, *args, **kwargs):
        depth[0] += 1
        start = time.perf_counter()
        try:
            return original_evaluate(self, *args, **kwargs)
        finally:
            depth[0] -= 1
            if _runs and depth[0] == 0:
                _runs[-1].eval_seconds += time.perf_counter() - start

    trainer_cls.train, trainer_cls.training_step, trainer_cls.evaluate = train, training_step, evaluate


def _wrap_generate(mixin) -> None:
    if getattr(mixin.generate, "_suite_timed", False):
        return
    original_generate = mixin.generate
    depth = [0]  # a PeftModel's generate calls its base model's: time the outer call only

    @_timed
    @functools.wraps(original_generate)
    def generate(self, *args, **kwargs):
        depth[0] += 1
        start = time.perf_counter()
        try:
            output = original_generate(self, *args, **kwargs)
        finally:
            depth[0] -= 1
        if depth[0] == 0:
            prompt = kwargs.get("input_ids", args[0] if args else None)
            sequences = getattr(output, "sequences", output)
            new = sequences.numel() - prompt.numel() if hasattr(prompt, "numel") and hasattr(sequences, "numel") else 0
            _write({"kind": "generate", "seconds": time.perf_counter() - start, "new_tokens": int(new),
                    "rows": int(sequences.shape[0]) if hasattr(sequences, "shape") else 0})
        return output

    mixin.generate = generate
