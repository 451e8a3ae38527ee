"""Direct preference optimisation (DPO): the loss, the log-probabilities it is made of, and preference data. Lesson 06.

DPO needs four numbers per preference pair: the log-probability of the chosen and of the rejected answer under the
model being trained (the policy) and under a frozen copy of where it started (the reference). `sequence_logps`
computes them, tokenising each pair exactly as TRL's `DPOTrainer` does, so the loss written here and TRL's can be
compared on the same batch:

    prompt ids      = chat template of the prompt, with the open assistant turn (add_generation_prompt=True)
    completion ids  = chat template of prompt + answer, after the prompt: the answer's tokens, its end-of-turn
                      token (EOS) and whatever the template writes after it (a newline in ChatML)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from trl import DPOTrainer

from course_lib import lora, runs
from course_lib.chat import prompt_messages
from course_lib.checks import positive_number, whole_number
from course_lib.jsonl import read_jsonl
from course_lib.paths import build_path
from course_lib.preferences import PreferenceError, check_preference_row, with_bad_habits
from course_lib.profiles import Profile, course_seed, set_seed
from course_lib.training import labelled_logits, plain_head_model, upcast_trainable

if TYPE_CHECKING:
    import torch

Conversation = Sequence[dict]  # chat turns: {"role": ..., "content": ...}


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The sigmoid DPO loss per pair, with the chosen and rejected rewards (detached, for logging). Lesson 06.

    loss = -log sigmoid(beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)))
    reward = beta * (policy - ref): how much more likely the policy makes an answer than the reference did.
    """
    import torch.nn.functional as F

    shapes = {t.shape for t in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)}
    if len(shapes) != 1:
        raise ValueError("the four log-probability tensors must have one shape, one value per pair; "
                         f"got {sorted(map(tuple, shapes))}")
    if beta <= 0:
        raise ValueError(f"beta must be positive (typical values 0.01 to 0.5); got {beta}")
    # 1) log-ratios: how far the policy has moved from the reference on each answer
    chosen_logratios = policy_chosen_logps - ref_chosen_logps
    rejected_logratios = policy_rejected_logps - ref_rejected_logps
    # 2) the loss is small when the chosen answer gained more than the rejected one
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))
    # 3) the implicit rewards, for reporting
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def reward_stats(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> dict[str, float]:
    """Mean rewards, mean margin and preference accuracy (share of pairs whose chosen reward is higher). Lesson 06.

    The keys are the names TRL's DPOTrainer logs them under, so the two can be compared line by line.
    """
    if chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.numel() == 0:
        raise ValueError(f"need one chosen and one rejected reward per pair; got shapes {tuple(chosen_rewards.shape)} "
                         f"and {tuple(rejected_rewards.shape)}")
    return {
        "rewards/chosen": chosen_rewards.float().mean().item(),
        "rewards/rejected": rejected_rewards.float().mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).float().mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
    }


def as_conversation(text_or_turns: str | Conversation, role: str) -> list[dict]:
    """A prompt (role "user") or an answer (role "assistant") as chat turns; turns pass through unchanged."""
    if isinstance(text_or_turns, str):
        return prompt_messages(text_or_turns) if role == "user" else [{"role": role, "content": text_or_turns}]
    return list(text_or_turns)


def pair_ids(tokenizer, prompt: str | Conversation, completion: str | Conversation) -> tuple[list[int], list[int]]:
    """(prompt ids, completion ids) for one answer, tokenised as TRL's DPOTrainer does. Lesson 06.

    The completion starts where the tokens of the prompt alone (with the open assistant turn) and of prompt + answer
    part ways, which is right after the prompt for the course's templates.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template, so prompts cannot be written as the model reads them; "
                         "set tokenizer.chat_template to the model's template first")
    prompt_turns = as_conversation(prompt, "user")
    prompt_ids = list(tokenizer.apply_chat_template(prompt_turns, tokenize=True, return_dict=True,
                                                    add_generation_prompt=True)["input_ids"])
    full_ids = list(tokenizer.apply_chat_template(prompt_turns + as_conversation(completion, "assistant"),
                                                  tokenize=True, return_dict=True)["input_ids"])
    shared = 0
    while shared < min(len(prompt_ids), len(full_ids)) and prompt_ids[shared] == full_ids[shared]:
        shared += 1
    return prompt_ids[:shared], full_ids[shared:]


def sequence_logps(
    model,
    tokenizer,
    prompts: Sequence[str | Conversation],
    completions: Sequence[str | Conversation],
    batch_size: int = 8,
    max_length: int | None = None,
    requires_grad: bool = False,
) -> torch.Tensor:
    """Sum of the log-probabilities of each completion's tokens given its prompt, one value per row. Lesson 06.

    Prompts are conversations (or a user message as text), completions an assistant turn (or its text). Rows are
    right-padded in batches of `batch_size`; padding and prompt tokens are left out of the sums. `max_length` keeps
    the first tokens of prompt + completion, as TRL's `max_length` does. Without `requires_grad` the model runs in
    eval mode without gradients; with it, in its own mode, and the result can be backpropagated.
    """
    import torch

    if len(prompts) != len(completions):
        raise ValueError(f"got {len(prompts)} prompts and {len(completions)} completions; "
                         "pass one completion per prompt")
    whole_number("batch_size", batch_size, "Pass the rows scored at once, e.g. batch_size=8.")
    # 1) tokens of prompt + completion, and a mask that is 1 on the completion's tokens
    sequences = []
    for i, (prompt, completion) in enumerate(zip(prompts, completions, strict=True)):
        prompt_ids, completion_ids = pair_ids(tokenizer, prompt, completion)
        if not completion_ids:
            raise ValueError(f"completion {i} adds no tokens after its prompt; give it some text")
        if max_length is not None and len(prompt_ids) >= max_length:
            raise ValueError(f"prompt {i} is {len(prompt_ids)} tokens, so max_length={max_length} leaves no room "
                             "for its completion; raise max_length or shorten the prompt")
        mask = [0] * len(prompt_ids) + [1] * len(completion_ids)
        sequences.append(((prompt_ids + completion_ids)[:max_length], mask[:max_length]))
    if not sequences:
        return torch.zeros(0)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    sums = []
    was_training = model.training
    if not requires_grad:
        model.eval()
    try:
        with torch.set_grad_enabled(requires_grad):
            for start in range(0, len(sequences), batch_size):
                batch = sequences[start : start + batch_size]
                width = max(len(ids) for ids, _ in batch)
                # 2) right padding: every row keeps the positions it has alone, so padding changes nothing
                input_ids = torch.tensor([ids + [pad_id] * (width - len(ids)) for ids, _ in batch], device=device)
                attention_mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch],
                                              device=device)
                completion_mask = torch.tensor([mask + [0] * (width - len(mask)) for _, mask in batch], device=device)
                # 3) the logits at position t predict token t + 1; fp16/bf16 logits are read in fp32
                logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
                logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
                token_logits = logits.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
                token_logps = token_logits - torch.logsumexp(logits, dim=-1)
                # 4) sum over the completion's tokens only
                sums.append((token_logps * completion_mask[:, 1:]).sum(dim=-1))
    finally:
        model.train(was_training)
    return torch.cat(sums)


def load_preferences(path: Path | str) -> list[dict]:
    """Rows of a preference JSONL file; a bad row raises PreferenceError naming file, line, field and fix. Lesson 06."""
    rows = []
    for where, row in read_jsonl(path, PreferenceError):
        check_preference_row(row, where)
        rows.append(row)
    return rows


def trl_rows(rows: Sequence[dict], *, system_prompt: bool = False) -> list[dict]:
    """Preference rows as DPOTrainer reads them (prompt, chosen, rejected), without the system turn. Lesson 06.

    The course's fine-tuned models are trained and asked without the system prompt (lesson 03), so their preference
    pairs leave it out too.
    """
    def prompt(turns):
        return [t for t in turns if system_prompt or t["role"] != "system"]

    return [{"prompt": prompt(r["prompt"]), "chosen": r["chosen"], "rejected": r["rejected"]} for r in rows]


def dpo_config(profile: Profile, *, beta: float = 0.1, lesson: str = "06", output_dir: str | Path | None = None,
               seed: int = 0, **overrides):
    """TRL's `DPOConfig` from the profile: the shared run settings of `runs.run_settings`, plus DPO's own. Lesson 06.

    Each pair is seen once, so the reference log-probabilities are computed in the step that uses them, with the
    adapter switched off, through the same plain LM head as the policy's (`PlainHeadDPOTrainer`); computing them
    all before training (`precompute_ref_log_probs`) pays off only when pairs are seen more than once. A step takes
    half the profile's SFT batch in pairs, so that it holds as many answers as an SFT step. Overrides win over the
    profile.
    """
    from trl import DPOConfig

    positive_number("beta", beta, "It is how strongly the policy is held near the reference: typical values are "
                                  "0.01 to 0.5, and lesson 06 uses 0.1.")
    settings = runs.run_settings(profile, lesson, output_dir=output_dir, seed=seed,
                                 max_steps=overrides.pop("max_steps", None))
    settings.update(
        per_device_train_batch_size=max(1, profile.batch_size // 2),  # pairs: two answers each, as many as in SFT
        beta=beta,  # how far the policy may move from the reference: small beta, weak pull back
        loss_type="sigmoid",  # the loss of the DPO paper, as dpo_loss writes it
        learning_rate=profile.learning_rate("dpo"),  # of the LoRA adapter DPO trains
        precompute_ref_log_probs=False,  # the reference runs in each step, with the adapter off
        save_strategy="no",
    )
    settings.update(overrides)
    if settings["save_strategy"] != "no":  # only a run that saves checkpoints can lose them
        runs.warn_if_not_persistent(settings["output_dir"])
    return DPOConfig(**settings)


# ---------------------------------------------------------------------------------------------------------
# Lesson 06's models, step by step and as one call for lesson 07

HABIT_SHARE, HABIT_STEPS = 0.75, 40  # lesson 06: three answers in four with a habit, 40 LoRA steps on them


def model_with_habits(model, tokenizer, profile: Profile, train_rows: Sequence[dict], *, share: float = HABIT_SHARE,
                      max_steps: int = HABIT_STEPS, output_dir: str | Path, seed: int = 0):
    """`model` after a short LoRA run on `train_rows` with bad habits (`preferences.with_bad_habits`), merged.

    Lesson 06.
    """
    habit_rows = with_bad_habits(list(train_rows), share=share, seed=seed)
    trainer = lora.fine_tune(model, tokenizer, profile, habit_rows, lesson="06", output_dir=output_dir, seed=seed,
                             train_tokens=False, max_steps=max_steps)
    return trainer.model.merge_and_unload()


def plain_lm_head(causal_lm) -> None:
    """Make `causal_lm(..., labels=..., fused_lm_head=True)` score the labelled positions from plain logits. Lesson 06.

    TRL 1.x patches the model with a fused LM head (`trl.trainer.utils.add_fused_lm_head`) that never builds the
    full logits. Off a Triton GPU it scores every position, the prompt and padding too, in chunks (what that costs
    on a CPU: benchmarks/README.md). This wraps the model's (already patched) forward: with `fused_lm_head=True` it
    applies the LM head to the labelled positions only and returns TRL's `FusedCausalLMOutput` with the same
    fields (tests/test_dpo.py checks each against TRL's: the log-probabilities, loss and gradients to 1e-5); every
    other call goes to TRL's forward.
    """
    import torch
    from trl.trainer.utils import FusedCausalLMOutput

    fused_forward = causal_lm.forward

    def forward(*args, fused_lm_head=False, labels=None, shift_labels=None, num_items_in_batch=None, **kwargs):
        if not fused_lm_head or shift_labels is not None or kwargs.get("output_router_logits"):
            return fused_forward(*args, fused_lm_head=fused_lm_head, labels=labels, shift_labels=shift_labels,
                                 num_items_in_batch=num_items_in_batch, **kwargs)
        kwargs["use_cache"] = False
        logits, targets, mask = labelled_logits(causal_lm, labels, *args, **kwargs)
        logits = logits.float()
        log_softmax = logits.log_softmax(dim=-1)
        picked = log_softmax.gather(-1, targets[mask].unsqueeze(-1)).squeeze(-1)

        def per_token(values):  # zero where the label is -100, as TRL's fields are
            return values.new_zeros(mask.shape).masked_scatter(mask, values)

        log_probs = per_token(picked)
        with torch.no_grad():
            entropy = per_token(-(log_softmax.exp() * log_softmax).sum(dim=-1))
            log_sum_sq_probs = per_token(torch.logsumexp(2 * log_softmax, dim=-1))
            mean_logits = per_token(logits.mean(dim=-1))
            is_top1 = mask.new_zeros(mask.shape).masked_scatter(mask, logits.argmax(dim=-1) == targets[mask])
        loss = -log_probs.sum() / (mask.sum().clamp(min=1) if num_items_in_batch is None else num_items_in_batch)
        return FusedCausalLMOutput(loss=loss, log_probs=log_probs, entropy=entropy, log_sum_sq_probs=log_sum_sq_probs,
                                   mean_logits=mean_logits, is_top1=is_top1, label_mask=mask)

    causal_lm.forward = forward


class PlainHeadDPOTrainer(DPOTrainer):
    """TRL's `DPOTrainer`, with `plain_lm_head` on its model where that is exact (`PLAIN_HEAD_MODEL_TYPES`). Lesson 06.

    With `precompute_ref_log_probs=True`, the reference log-probabilities computed while the trainer is built still
    go through TRL's fused head: the head is swapped once the trainer exists.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.args.fp16 or self.args.bf16:  # float32 master weights under 16-bit autocast, as in SFT
            upcast_trainable(self.model)
        causal_lm = plain_head_model(self.model)
        if causal_lm is not None:
            plain_lm_head(causal_lm)


def dpo_trainer(model, tokenizer, profile: Profile, pairs: Sequence[dict], *, beta: float = 0.1,
                output_dir: str | Path, seed: int = 0, **overrides):
    """A `PlainHeadDPOTrainer` with a fresh LoRA adapter on `model`, on the first max_steps × batch pairs. Lesson 06.

    With a `peft_config`, TRL computes the reference by running the same model with the adapter switched off. Where
    max_steps × batch is more than `len(pairs)` (the GPU profiles), the trainer goes over the pairs again.
    """
    from datasets import Dataset

    if not pairs:
        raise ValueError("pairs is empty: DPO needs preference pairs to train on. Lesson 06 reads them from "
                         "data/tickets/preferences.jsonl (load_preferences, then trl_rows); check that file, and any "
                         "slice applied to the pairs since.")
    set_seed(seed)  # the adapter's A matrices and the order of the pairs
    config = dpo_config(profile, beta=beta, output_dir=output_dir, seed=seed, **overrides)
    used = Dataset.from_list(list(pairs[: config.max_steps * config.per_device_train_batch_size]))
    trainer = PlainHeadDPOTrainer(model=model, args=config, train_dataset=used, processing_class=tokenizer,
                                  peft_config=lora.lora_config(profile))
    return runs.calm_progress(trainer)


def dpo_settings(profile: Profile, train_rows: Sequence[dict], pairs: Sequence[dict], *, seed: int = 0,
                 max_steps: int | None = None, beta: float = 0.1) -> dict:
    """Everything that decides lesson 06's DPO model, as a JSON-able dict (rows and pairs as hashes). Lesson 06."""
    import hashlib
    import json

    config = dpo_config(profile, beta=beta, output_dir=".", seed=seed, max_steps=max_steps)
    return {"method": "dpo", "sft": lora.lora_settings(profile, train_rows, seed=0, lesson="04"),
            "habit_share": HABIT_SHARE, "habit_steps": HABIT_STEPS, "beta": beta, "max_steps": config.max_steps,
            "learning_rate": config.learning_rate, "pairs_per_step": config.per_device_train_batch_size,
            "seed": course_seed(seed), "habit_rows": runs.rows_fingerprint(train_rows),
            "pairs": hashlib.sha256(json.dumps(list(pairs), sort_keys=True).encode()).hexdigest()}


def load_or_train(profile: Profile, train_rows: Sequence[dict], pairs: Sequence[dict], *, folder: str | Path,
                  seed: int = 0, max_steps: int | None = None, beta: float = 0.1) -> runs.SavedRun:
    """Lesson 06's DPO model (merged) from `folder` if it was made with the same settings; else make and save it.

    Making it repeats lesson 06: lesson 04's adapter (`lora.load_or_train`, from build/04_lora/adapter when saved),
    merged; bad habits (`model_with_habits`); DPO with a LoRA adapter for `max_steps` steps (default: the profile's
    budget for lesson 06), merged. The settings are `dpo_settings`'s. Returns a `runs.SavedRun` (model in eval
    mode, tokenizer, whether it was trained now).
    """
    wanted = dpo_settings(profile, train_rows, pairs, seed=seed, max_steps=max_steps, beta=beta)

    def train_and_save(folder: Path) -> runs.SavedRun:
        sft_lora = lora.load_or_train(profile, train_rows, folder=build_path("04_lora", "adapter"), seed=0, lesson="04")
        tokenizer = sft_lora.tokenizer
        run_dir = folder.parent / "runs"
        sft = model_with_habits(sft_lora.model.merge_and_unload(), tokenizer, profile, train_rows, output_dir=run_dir,
                                seed=seed)
        trainer = dpo_trainer(sft, tokenizer, profile, pairs, beta=beta, output_dir=run_dir, seed=seed,
                              max_steps=wanted["max_steps"])
        trainer.train()
        model = trainer.model.merge_and_unload()
        runs.save_model(model, tokenizer, folder, wanted)
        return runs.SavedRun(model, tokenizer, trained=True,
                             message=f"trained from the start to step {trainer.state.global_step}, saved to {folder}")

    return runs.saved_run(folder, wanted, load=lambda folder: runs.load_saved(profile, folder), train=train_and_save)
