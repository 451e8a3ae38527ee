"""Supervised fine-tuning, as lesson 03 teaches it: the TRL config from the profile, the trainer, the checks.

Introduced in lesson 03 (full SFT) and reused by the LoRA and QLoRA lessons. The lesson writes the idea itself
inline (chat template, assistant-only loss, the training loop's knobs); this module holds the parts every SFT run
repeats (the run plumbing every trainer shares is in `course_lib.runs`):

- `sft_config`: TRL's `SFTConfig` built from the active profile, every value said out loud;
- `sft_trainer`: an `SFTTrainer` on ticket rows (conversational format, assistant-only loss), its batches
  grouped by length (`LengthGroupedBatches`, `padding_share`);
- `preflight`: stops before training, with the fix, for the mistakes that waste a run;
- `check_label_mask`: decodes the trained-on tokens of a collated batch and asserts they are the answers;
- `sft_settings`, `load_or_train`: lesson 03's model, reused by later lessons or trained again (`runs.SavedRun`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch.utils.data import Sampler
from transformers import Trainer, TrainerCallback
from trl import SFTTrainer

from course_lib.chat import EOS, GENERATION_MARKER, IGNORE_INDEX
from course_lib.checks import whole_number
from course_lib.hardware import Hardware
from course_lib.models import load_model_and_tokenizer
from course_lib.profiles import Profile, course_seed, set_seed
from course_lib.runs import (
    SavedRun,
    calm_progress,
    load_saved,
    rows_fingerprint,
    run_settings,
    save_model,
    saved_run,
    step_budget,
    train,
    warn_if_not_persistent,
)

if TYPE_CHECKING:
    from trl import SFTConfig


class PreflightError(ValueError):
    """Training would fail or silently learn the wrong thing; the message says which setting to change."""


# ---------------------------------------------------------------------------------------------------------
# 1) The config


def sft_config(
    profile: Profile,
    lesson: str = "03",
    output_dir: str | Path | None = None,  # default: build/run_<lesson> in the course folder
    seed: int = 0,
    *,
    eval_steps: int | None = None,  # evaluate every this many steps; default: 5 times per run
    tensorboard: bool = False,  # also write TensorBoard logs to output_dir/runs
    **overrides: Any,  # any other SFTConfig field, e.g. learning_rate=5e-4, max_steps=20
) -> SFTConfig:
    """TRL's `SFTConfig` from the profile: precision, batch size, sequence length, step budget, seed. Lesson 03.

    Everything that differs from TRL's defaults is set here explicitly, so a learner reading the config sees
    what the run does. Overrides win over the profile.
    """
    from trl import SFTConfig

    settings = run_settings(profile, lesson, output_dir=output_dir, seed=seed, tensorboard=tensorboard,
                            max_steps=overrides.pop("max_steps", None))
    if eval_steps is None:
        eval_steps = max(1, settings["max_steps"] // 5)
    eval_steps = whole_number("eval_steps", eval_steps,
                              "Pass e.g. eval_steps=20, or eval_steps=None to evaluate 5 times a run.")
    settings.update(
        # what is trained
        assistant_only_loss=True,  # loss on the assistant's answers only (the {% generation %} spans)
        packing=False,  # one conversation per row, so the label mask can be decoded row by row
        learning_rate=profile.learning_rate("full"),
        # what is evaluated and saved
        eval_strategy="steps",
        eval_steps=eval_steps,
        save_strategy="steps",
        save_steps=eval_steps,
        save_total_limit=2,
        include_num_input_tokens_seen="non_padding",  # the throughput callback reads it
    )
    if "gradient_checkpointing" in overrides:  # the old name given alone must still take effect
        overrides.setdefault("activation_checkpointing", overrides["gradient_checkpointing"])
    settings.update(overrides)
    if settings["save_strategy"] != "no":  # only a run that saves checkpoints can lose them
        warn_if_not_persistent(settings["output_dir"])
    return SFTConfig(**settings)


# ---------------------------------------------------------------------------------------------------------
# 2) The trainer


def to_dataset(rows: Sequence[dict]) -> Any:
    """A `datasets.Dataset` of the rows' conversations (TRL's conversational format: one `messages` column)."""
    from datasets import Dataset

    return Dataset.from_dict({"messages": [row["messages"] for row in rows]})


# Architectures whose logits are exactly the LM head applied to the decoder's last hidden state (no soft-capping
# or scaling of the logits), so that the head may be applied to the trained positions alone
PLAIN_HEAD_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})


def plain_head_model(model):
    """The causal LM in `model`, unwrapped from peft, if it is a `PLAIN_HEAD_MODEL_TYPES` one, else None. Lesson 03.

    None for a peft prompt-learning model (prompt tuning, lesson 04): its soft prompt is prepended by the peft
    wrapper's own forward, which the unwrapped decoder would skip.
    """
    config = getattr(model, "active_peft_config", None)
    if config is not None and config.is_prompt_learning:
        return None
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    return causal_lm if causal_lm.config.model_type in PLAIN_HEAD_MODEL_TYPES else None


def labelled_logits(causal_lm, labels, *args, **decoder_inputs):
    """(logits, targets, mask): the LM head applied only at the positions that predict a label. Lessons 03 and 06.

    Runs `causal_lm`'s decoder on `args`/`decoder_inputs` (input_ids, attention_mask, ...). Position t predicts
    token t + 1, so `targets` is `labels` shifted left by one and `mask` marks its entries other than IGNORE_INDEX;
    `logits` has one row per True entry of `mask`, in order. Exact only for `PLAIN_HEAD_MODEL_TYPES`.
    """
    hidden = causal_lm.get_decoder()(*args, **decoder_inputs).last_hidden_state[:, :-1]
    targets = labels[:, 1:]  # position t predicts token t + 1
    mask = targets != IGNORE_INDEX
    return causal_lm.get_output_embeddings()(hidden[mask]), targets, mask


class LengthGroupedBatches(Sampler):
    """Row indices whose consecutive `batch_size` rows have similar lengths, the batches in random order. Lesson 03.

    A batch is padded to its longest row, so a random batch of tickets is about a sixth padding, which the model
    computes and throws away. Here each epoch shuffles the rows, sorts every `GROUP_BATCHES` batches' worth of them
    by length, cuts those into batches and shuffles the batches: every row is seen once per epoch, as with random
    batches, at almost no padding. An epoch's order depends on the seed and the epoch alone (`set_epoch`, which the
    Trainer calls), so a run resumed from a checkpoint sees the same batches as one that was never stopped.
    """

    GROUP_BATCHES = 50  # batches sorted together: more, less padding; fewer, more randomness in which rows meet

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = list(lengths), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        import torch

        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        group = self.GROUP_BATCHES * self.batch_size
        batches = []
        for start in range(0, len(order), group):
            rows = sorted(order[start : start + group], key=lambda i: self.lengths[i])
            batches += [rows[i : i + self.batch_size] for i in range(0, len(rows), self.batch_size)]
        # a short batch (the rows left over) stays last, so that every other batch is whole
        last = [batches.pop()] if batches and len(batches[-1]) < self.batch_size else []
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()] + last
        return iter([i for batch in shuffled for i in batch])


def train_batches(trainer, epoch: int = 0) -> list[list[int]]:
    """The row indices of each training batch of `epoch`, in the order `trainer` trains on them. Lesson 03."""
    sampler = trainer._get_train_sampler()
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(epoch)
    order, size = list(sampler), trainer.args.train_batch_size
    return [order[i : i + size] for i in range(0, len(order), size)]


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """The share of the tokens in `batches` (lists of row indices, each padded to its longest row) that are padding."""
    padded = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches)
    return 1 - sum(lengths[i] for batch in batches for i in batch) / padded


class PlainLossSFTTrainer(SFTTrainer):
    """TRL's `SFTTrainer`, with a plain cross-entropy loss over the trained tokens. Lesson 03.

    TRL 1.x computes the loss through a fused LM head that scores tokens in chunks, so that models with 150k-token
    vocabularies never hold all their logits at once; on a CPU that makes a step of the tiny model about 1.3-2x
    slower. This trainer instead runs the decoder, keeps the hidden states of the positions that have a label
    (the answer tokens, about half of a padded batch of tickets) and applies the LM head to those alone: the same
    value (mean cross-entropy over the trained tokens; tests/test_training.py checks it against TRL's and the
    model's own to 1e-5) for about 20% less compute per step on the tiny model. Evaluation, and architectures not in
    `PLAIN_HEAD_MODEL_TYPES`, use the model's own loss from the full logits. TRL's extra entropy and token-accuracy
    logs are left out. Its training batches are rows of similar length, in random order (`LengthGroupedBatches`).
    """

    def _get_train_sampler(self, train_dataset=None):
        """Length-grouped batches in random order (`LengthGroupedBatches`) instead of random ones."""
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if dataset is None or "input_ids" not in getattr(dataset, "column_names", ()):
            return super()._get_train_sampler(train_dataset)
        return LengthGroupedBatches([len(ids) for ids in dataset["input_ids"]],
                                    self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                    seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        causal_lm = plain_head_model(model)
        if return_outputs or "labels" not in inputs or causal_lm is None:
            return Trainer.compute_loss(self, model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        import torch.nn.functional as F

        logits, targets, trained = labelled_logits(causal_lm, inputs["labels"], input_ids=inputs["input_ids"],
                                                   attention_mask=inputs.get("attention_mask"),
                                                   position_ids=inputs.get("position_ids"))
        loss = F.cross_entropy(logits.float(), targets[trained], reduction="sum")
        # the model's own loss divides by the trained tokens of the whole accumulated batch when the Trainer says
        return loss / (num_items_in_batch if num_items_in_batch is not None else trained.sum())


def check_rows(train_rows: Sequence[dict], eval_rows: Sequence[dict] | None = None) -> None:
    """Refuse empty training rows, and an empty (rather than None) list of evaluation rows. Lesson 03."""
    if not train_rows:
        raise ValueError("train_rows is empty: there is nothing to train on. The lessons read them from "
                         "data/tickets/train_curated.jsonl (lesson 02's curated rows); check that file, and any filter "
                         "or slice applied to the rows since.")
    if eval_rows is not None and not eval_rows:
        raise ValueError("eval_rows is empty: there is nothing to evaluate on. Pass rows (e.g. gold tickets from "
                         "data/tickets/gold_test.jsonl), or eval_rows=None to train without evaluating.")


def upcast_trainable(model) -> int:
    """Cast the float16 and bfloat16 parameters that train to float32, in place; returns how many. Lesson 03.

    Mixed precision as the Trainer runs it (fp16=True or bf16=True) computes under autocast in 16 bits, but the
    weights it updates must be float32 master weights: with float16 ones the fp16 GradScaler refuses to unscale
    their gradients ("Attempting to unscale FP16 gradients."), and with bfloat16 ones AdamW's small updates round
    away. Frozen weights (a LoRA or QLoRA base) stay in 16 bits. The parameter objects are kept, so an optimiser
    that already holds them still updates them.
    """
    import torch

    upcast = 0
    for param in model.parameters():
        if param.requires_grad and param.dtype in (torch.float16, torch.bfloat16):
            param.data = param.data.float()
            upcast += 1
    return upcast


def sft_trainer(model, tokenizer, args: SFTConfig, train_rows: Sequence[dict], eval_rows: Sequence[dict] | None = None,
                callbacks: Sequence[TrainerCallback] = ()) -> SFTTrainer:
    """An `SFTTrainer` on ticket rows (conversational format), with the model's own loss. Lesson 03.

    Without `eval_rows` the run does not evaluate: `args.eval_strategy` is set to "no". Empty rows are an error.
    With `args.fp16` or `args.bf16` (the GPU profiles) the trainable parameters are made float32 master weights
    (`upcast_trainable`): full fine-tuning then holds the whole model in float32 and computes in 16 bits.
    """
    check_rows(train_rows, eval_rows)
    if eval_rows is None and args.eval_strategy != "no":
        args.eval_strategy = "no"
    trainer = PlainLossSFTTrainer(
        model=model,
        args=args,
        train_dataset=to_dataset(train_rows),
        eval_dataset=to_dataset(eval_rows) if eval_rows is not None else None,
        processing_class=tokenizer,
        callbacks=list(callbacks),
    )
    trainer.rows_fingerprint = rows_fingerprint(train_rows)  # what `train` records in each checkpoint as the data
    if args.fp16 or args.bf16:  # after TRL's own casts (it makes a quantised model's adapters bfloat16)
        upcast_trainable(trainer.model)
    return calm_progress(trainer)


# ---------------------------------------------------------------------------------------------------------
# 3) Preflight


def example_lengths(tokenizer, rows: Sequence[dict]) -> list[tuple[int, int]]:
    """Per row: (tokens, trained tokens), tokenized with the chat template exactly as the trainer does."""
    out = []
    for row in rows:
        enc = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        out.append((len(enc["input_ids"]), int(sum(enc["assistant_masks"]))))
    return out


def preflight(model, tokenizer, args: SFTConfig, rows: Sequence[dict], hardware: Hardware | None = None) -> None:
    """Raise PreflightError before training for the mistakes that waste a run; each message names the fix. Lesson 03.

    Checks, in order: a chat template exists; the pad token is set and is not EOS; bf16 is only asked for on a
    GPU that has it; no example is longer than `args.max_length` or the model's context; every example has
    tokens to train on.
    """
    # 1) a chat template: without one there is no conversation format and no assistant mask
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise PreflightError(
            "The tokenizer has no chat template (tokenizer.chat_template is None), so conversations cannot be "
            "turned into training text. Set one, e.g. tokenizer.chat_template = course_lib.chat.CHAT_TEMPLATE, or "
            "load the model's instruct variant, which ships its template."
        )
    if getattr(args, "assistant_only_loss", False) and not GENERATION_MARKER.search(template):
        raise PreflightError(
            "assistant_only_loss=True, but the chat template has no {% generation %} ... {% endgeneration %} "
            "markers, so every label would be masked. Wrap the assistant's content and its end-of-turn token "
            "in those markers (see course_lib.chat.CHAT_TEMPLATE), or set assistant_only_loss=False."
        )
    # 2) a pad token distinct from EOS: a collator that masks padding by token id would mask the EOS as well.
    #    TRL's collator masks by position and keeps it; the refusal is a safe habit for every other collator.
    if tokenizer.pad_token_id is None:
        raise PreflightError(
            "The tokenizer has no pad token (tokenizer.pad_token is None). Add a dedicated one: "
            "tokenizer.add_special_tokens({'pad_token': '<|pad|>'}) and model.resize_token_embeddings(len(tokenizer))."
        )
    if tokenizer.pad_token_id == tokenizer.eos_token_id:
        raise PreflightError(
            f"tokenizer.pad_token is the EOS token ({tokenizer.eos_token!r}). TRL's SFT collator masks padding by "
            "position and still trains on the EOS, but a collator that masks padding by token id (transformers' "
            "DataCollatorForLanguageModeling, many older tutorials) sets every EOS label to -100 too, and the model "
            "never learns to stop. Use a distinct pad token, e.g. an unused special token of the "
            "tokenizer, or tokenizer.add_special_tokens({'pad_token': '<|pad|>'}) followed by "
            "model.resize_token_embeddings(len(tokenizer))."
        )
    # 3) bf16 only where the GPU has it
    if getattr(args, "bf16", False):
        hardware = hardware or Hardware.detect()
        if not hardware.cuda:
            raise PreflightError(
                "bf16=True, but there is no CUDA GPU: CPU training in bfloat16 is slow and imprecise. "
                "Pass bf16=False (the tiny profile trains in float32)."
            )
        if not hardware.bf16:
            raise PreflightError(
                f"bf16=True, but {hardware.gpu_name} has no native bfloat16 (it needs compute capability 8.0 or "
                "newer, e.g. A100, L4, H100). Pass bf16=False, fp16=True (the t4 profile does this)."
            )
    # 4) lengths and trained tokens of every example
    max_length = getattr(args, "max_length", None)
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    for i, (n_tokens, n_trained) in enumerate(example_lengths(tokenizer, rows)):
        if max_length is not None and n_tokens > max_length:
            raise PreflightError(
                f"Example {i} has {n_tokens} tokens, more than max_length={max_length}: it would be truncated, "
                "cutting off its answer and the EOS. Drop overlong rows (lesson 02's length filter) or raise "
                "max_length in the config."
            )
        if context is not None and n_tokens > context:
            raise PreflightError(
                f"Example {i} has {n_tokens} tokens, more than the model's context of {context} "
                "(config.max_position_embeddings). Drop overlong rows (lesson 02's length filter)."
            )
        if n_trained == 0:
            raise PreflightError(
                f"Example {i} has every label masked (no assistant tokens), so it teaches nothing. Check that its "
                "'messages' end with a non-empty assistant turn, and that the chat template puts the assistant's "
                "content inside {% generation %} ... {% endgeneration %}."
            )


# ---------------------------------------------------------------------------------------------------------
# 4) The label-mask check


def expected_trained_text(messages: Sequence[dict]) -> str:
    """What assistant-only loss must train on for one conversation: each assistant turn followed by EOS."""
    return "".join(m["content"] + EOS for m in messages if m["role"] == "assistant")


def trained_text(tokenizer, input_ids, labels) -> str:
    """The tokens of one collated row whose label is not -100, decoded with special tokens kept."""
    kept = [int(t) for t, label in zip(input_ids, labels, strict=True) if int(label) != IGNORE_INDEX]
    return tokenizer.decode(kept, skip_special_tokens=False)


def check_label_mask(trainer: SFTTrainer, rows: Sequence[dict] | None = None, n: int = 4) -> list[str]:
    """Collate `n` rows as the trainer does, decode the trained tokens, check they are the answers and EOS. Lesson 03.

    `rows` are the rows the trainer was built on (in order); without them the conversations are read from the
    trainer's own dataset when it still has its `messages` column. Returns the decoded texts, one per row.
    """
    dataset = trainer.train_dataset
    n = min(n, len(dataset))
    examples = [dataset[i] for i in range(n)]
    if rows is None:
        if "messages" not in dataset.column_names:
            raise ValueError("the trainer's dataset no longer holds 'messages'; pass the rows it was built on as "
                             "rows=...")
        rows = [{"messages": e["messages"]} for e in examples]
    features = [{k: v for k, v in e.items() if k in ("input_ids", "labels", "assistant_masks", "completion_mask")}
                for e in examples]
    batch = trainer.data_collator(features)
    texts = []
    for i in range(n):
        got = trained_text(trainer.processing_class, batch["input_ids"][i], batch["labels"][i])
        want = expected_trained_text(rows[i]["messages"])
        if got != want:
            raise AssertionError(
                f"Row {i}: the loss is computed on\n  {got!r}\nbut it should be the assistant's answer and EOS only:\n"
                f"  {want!r}\nCheck assistant_only_loss=True and the {{% generation %}} markers of the chat template."
            )
        texts.append(got)
    return texts


def sft_settings(profile: Profile, train_rows: Sequence[dict], *, seed: int = 0, max_steps: int | None = None,
                 lesson: str = "03") -> dict:
    """Everything that decides the weights of lesson 03's full fine-tuning run, as a JSON-able dict (rows as a hash)."""
    return {"method": "full", "model": profile.model, "dtype": profile.dtype,
            "max_steps": step_budget(profile, lesson, max_steps), "seed": course_seed(seed),
            "learning_rate": profile.learning_rate("full"), "batch_size": profile.batch_size,
            "max_length": profile.max_length, "rows": rows_fingerprint(train_rows)}


def load_or_train(profile: Profile, train_rows: Sequence[dict], *, folder: str | Path, seed: int = 0,
                  max_steps: int | None = None, lesson: str = "03") -> SavedRun:
    """Lesson 03's fully fine-tuned model from `folder` if it was trained with the same settings; else train, save it.

    Lesson 03 saves its model this way, so that a later lesson (07 evaluates it) loads it in seconds instead of
    training it again. Training starts from the profile's base model with lesson 03's settings (`sft_config`, no
    checkpoints); the settings are `sft_settings`'s. Returns a `runs.SavedRun` (model in eval mode, tokenizer,
    whether it was trained now).
    """
    import torch

    wanted = sft_settings(profile, train_rows, seed=seed, max_steps=max_steps, lesson=lesson)

    def train_and_save(folder: Path) -> SavedRun:
        set_seed(seed)
        model, tokenizer = load_model_and_tokenizer(profile)
        config = sft_config(profile, lesson=lesson, output_dir=folder.parent / "runs", seed=seed, save_strategy="no",
                            logging_strategy="no", max_steps=wanted["max_steps"])
        result = train(sft_trainer(model, tokenizer, config, train_rows), resume=False)
        # trained with float32 master weights; kept in the profile's dtype
        model = model.to(getattr(torch, profile.dtype))
        save_model(model, tokenizer, folder, wanted)
        return SavedRun(model, tokenizer, trained=True,
                        message=f"trained from the start to step {result.global_step}, saved to {folder}")

    return saved_run(folder, wanted, load=lambda folder: load_saved(profile, folder), train=train_and_save)
