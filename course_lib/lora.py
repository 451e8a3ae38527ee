"""LoRA with peft, as the adapter lessons use it. Introduced in lesson 04; reused by lessons 05 and 06.

Lesson 04 writes LoRA by hand and checks it against peft. This module holds the settings every adapter lesson
repeats, so that they are the same everywhere:

- `answer_token_ids`: the tokens the answers are written with; the tiny profile trains their embedding rows too;
- `lora_config`: peft's `LoraConfig` from the profile (rank, targets, alpha = 2 x rank, trained token rows);
- `lora_rank`: the rank asked for, or the profile's (`None`); 0 or less is an error;
- `lora_train_tokens`: whether the answer tokens' rows train, as asked or as the profile says (`None`);
- `trainable_parameters`: the trainable parameters, read from a model;
- `folder_bytes`: the size on disk of a saved adapter or model;
- `fine_tune`, `save_adapter`, `lora_settings`, `load_or_train`: train an adapter with the SFT helpers, save it with
  its settings, and reuse a saved one in a later lesson (`runs.SavedRun`).

The adapter learning rate is the profile's (`profile.learning_rate("lora")`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from course_lib.checks import whole_number
from course_lib.memory.shapes import TARGETS
from course_lib.models import load_model_and_tokenizer
from course_lib.profiles import Profile, course_seed, set_seed

if TYPE_CHECKING:
    from course_lib.runs import SavedRun

def lora_rank(profile: Profile, rank: int | None = None) -> int:
    """`rank` when given (a whole number of at least 1), else the profile's `lora_rank`. Lesson 04."""
    if rank is None:
        return profile.lora_rank
    return whole_number("rank", rank, f"Pass the adapter's rank, e.g. rank=8, or rank=None for the profile's "
                                      f"rank ({profile.lora_rank}).")


def lora_train_tokens(profile: Profile, train_tokens: bool | None = None) -> bool:
    """`train_tokens` when given (True or False), else the profile's `lora_train_tokens`. Lesson 04.

    The tiny profile trains the answer tokens' embedding rows, which a model that never wrote the task's JSON needs;
    the GPU profiles leave the embeddings frozen, as LoRA recipes for real instruct models do.
    """
    if train_tokens is None:
        return profile.lora_train_tokens
    if not isinstance(train_tokens, bool):
        raise ValueError(f"train_tokens must be True or False, not {train_tokens!r}. Pass train_tokens=None for the "
                         f"profile's setting ({profile.lora_train_tokens}).")
    return train_tokens


def answer_token_ids(tokenizer, rows: Sequence[dict]) -> list[int]:
    """Sorted ids of every token in the rows' assistant answers, and of EOS, which ends each answer. Lesson 04.

    LoRA leaves the embedding matrix frozen. A model that has rarely written these tokens (the tiny model has
    never written the task's JSON) then learns the format slowly; training just these rows fixes that for a
    few thousand parameters (peft's `trainable_token_indices`). Whether a run trains them is the profile's
    `lora_train_tokens`.
    """
    ids = {tokenizer.eos_token_id}
    for row in rows:
        for message in row["messages"]:
            if message["role"] == "assistant":
                ids.update(tokenizer(message["content"], add_special_tokens=False)["input_ids"])
    return sorted(ids)


def lora_config(
    profile: Profile,
    rank: int | None = None,  # default: the profile's lora_rank
    targets: str = "all-linear",  # "attention" or "all-linear": the projections of course_lib.memory.TARGETS
    token_ids: Sequence[int] | None = None,  # embedding rows to train as well (answer_token_ids), or None
    alpha: int | None = None,  # default: 2 x rank, so the update's scale alpha / rank is 2 at every rank
) -> Any:
    """peft's `LoraConfig` for a causal LM, from the profile. Lesson 04."""
    from peft import LoraConfig

    if targets not in TARGETS:
        raise ValueError(f"targets={targets!r}: use one of {', '.join(map(repr, TARGETS))}.")
    rank = lora_rank(profile, rank)
    if alpha is not None:
        whole_number("alpha", alpha, f"Pass e.g. alpha={2 * rank}, or alpha=None for 2 x rank.")
    return LoraConfig(
        r=rank,
        lora_alpha=2 * rank if alpha is None else alpha,
        target_modules=list(TARGETS[targets]),  # the same modules as peft's "all-linear" (tests/test_lora.py)
        lora_dropout=0.0,  # runs this short do not overfit; dropout would only slow them down
        bias="none",
        task_type="CAUSAL_LM",
        trainable_token_indices=list(token_ids) if token_ids else None,
    )


def trainable_parameters(model) -> int:
    """Parameters of `model` that train (requires_grad), counted from its tensors."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def folder_bytes(folder: str | Path) -> int:
    """Bytes of every file under `folder`: what a saved adapter or model costs on disk."""
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def fine_tune(
    model,
    tokenizer,
    profile: Profile,
    train_rows: Sequence[dict],
    *,
    lesson: str = "04",  # whose step budget (profile.max_steps) to use
    output_dir: str | Path,
    seed: int = 0,
    rank: int | None = None,  # default: profile.lora_rank
    targets: str = "all-linear",
    train_tokens: bool | None = None,  # also train the answer tokens' embedding rows; default: the profile's setting
    alpha: int | None = None,  # default: 2 x rank (lora_config)
    eval_rows: Sequence[dict] | None = None,  # rows whose loss trainer.evaluate() reports, e.g. dev tickets
    callbacks: Sequence[Any] = (),
    resume: bool = False,  # go on from the last checkpoint in output_dir, if there is one
    **overrides: Any,  # any SFTConfig field, e.g. max_steps=20
):
    """Wrap `model` in a fresh LoRA adapter and train it on `train_rows` with the SFT helpers; returns the trainer.

    The trained model is `trainer.model` (a peft model). Lesson 04 writes these steps out one by one; the sweep of
    lesson 04 and lessons 05-06 call this function.
    """
    from peft import get_peft_model

    from course_lib import runs, training

    # 1) check the rows and settings before the adapter changes `model` in place
    training.check_rows(train_rows, eval_rows)
    overrides.setdefault("learning_rate", profile.learning_rate("lora"))
    overrides.setdefault("save_strategy", "no")
    config = training.sft_config(profile, lesson=lesson, output_dir=output_dir, seed=seed, **overrides)
    # 2) the adapter, then the trainer
    set_seed(seed)  # the adapter's A matrices are drawn here
    token_ids = answer_token_ids(tokenizer, train_rows) if lora_train_tokens(profile, train_tokens) else None
    peft_model = get_peft_model(model, lora_config(profile, rank=rank, targets=targets, token_ids=token_ids,
                                                   alpha=alpha))
    trainer = training.sft_trainer(peft_model, tokenizer, config, train_rows, eval_rows=eval_rows, callbacks=callbacks)
    runs.train(trainer, resume=resume)
    return trainer


def lora_settings(profile: Profile, train_rows: Sequence[dict], *, seed: int = 0, max_steps: int | None = None,
                  lesson: str = "04", rank: int | None = None, targets: str = "all-linear",
                  train_tokens: bool | None = None) -> dict:
    """Everything that decides a trained adapter's weights, as a JSON-able dict (the rows as a hash). Lesson 04."""
    from course_lib.runs import rows_fingerprint, step_budget

    return {"model": profile.model, "dtype": profile.dtype, "rank": lora_rank(profile, rank), "targets": targets,
            "train_tokens": lora_train_tokens(profile, train_tokens),
            "max_steps": step_budget(profile, lesson, max_steps), "seed": course_seed(seed),
            "learning_rate": profile.learning_rate("lora"), "batch_size": profile.batch_size,
            "rows": rows_fingerprint(train_rows)}


def save_adapter(model, folder: str | Path, settings: dict) -> Path:
    """Save a peft model's adapter (safetensors) to `folder`, with the settings it was trained with. Lesson 04.

    The settings go to `course_settings.json` (`runs.write_settings`), which `load_or_train` compares.
    """
    from course_lib.runs import forget_settings, saved_run_lock, write_settings

    with saved_run_lock(folder) as folder:
        forget_settings(folder)
        model.save_pretrained(str(folder))
        write_settings(folder, settings)
    return folder


def load_or_train(profile: Profile, train_rows: Sequence[dict], *, folder: str | Path, seed: int = 0,
                  max_steps: int | None = None, lesson: str = "04", rank: int | None = None,
                  targets: str = "all-linear", train_tokens: bool | None = None,
                  base: tuple[Any, Any] | None = None) -> SavedRun:
    """A base model with the adapter saved in `folder` if it was trained with the same settings; else train, save it.

    Lesson 04 saves its adapter this way, so a later lesson that needs it (05 compares against it, 06 starts
    from it) loads it in seconds instead of training it again. `base` is the (model, tokenizer) the adapter goes
    on, which peft wraps in place; by default the profile's model, loaded fresh. The settings are `lora_settings`'s.
    Returns a `runs.SavedRun` whose model is the peft model, in eval mode.
    """
    from peft import PeftModel

    from course_lib.runs import SavedRun, saved_run

    wanted = lora_settings(profile, train_rows, seed=seed, max_steps=max_steps, lesson=lesson, rank=rank,
                           targets=targets, train_tokens=train_tokens)

    def base_model():
        return base if base is not None else load_model_and_tokenizer(profile)

    def load(folder: Path):
        model, tokenizer = base_model()
        return PeftModel.from_pretrained(model, str(folder)), tokenizer

    def train_and_save(folder: Path) -> SavedRun:
        model, tokenizer = base_model()
        trainer = fine_tune(model, tokenizer, profile, train_rows, lesson=lesson, output_dir=folder.parent / "runs",
                            seed=seed, rank=rank, targets=targets, train_tokens=train_tokens,
                            max_steps=wanted["max_steps"])
        save_adapter(trainer.model, folder, wanted)
        return SavedRun(trainer.model, tokenizer, trained=True,
                        message=f"trained from the start to step {trainer.state.global_step}, saved to {folder}")

    return saved_run(folder, wanted, load=load, train=train_and_save)
