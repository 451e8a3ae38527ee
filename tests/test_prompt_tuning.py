"""Lesson 04's prompt tuning: a soft prompt written by hand against peft's `PromptTuningConfig`, and the course's
trainer training peft's soft prompt (and nothing else)."""

import pytest
import torch
from torch import nn

from course_lib import lora, training
from course_lib.chat import IGNORE_INDEX
from course_lib.claims import float32_tolerance
from course_lib.paths import data_dir
from course_lib.tickets import load_tickets, without_system_prompt

from tiny_model import TINY, fresh_model

N_VIRTUAL = 8


class SoftPrompt(nn.Module):
    """Lesson 04's soft prompt by hand: n trainable vectors in front of a frozen model's token embeddings."""

    def __init__(self, model, prompt: torch.Tensor):
        super().__init__()
        self.model = model.requires_grad_(False)
        self.prompt = nn.Parameter(prompt.detach().clone())

    def forward(self, input_ids, attention_mask, labels=None):
        n, rows = self.prompt.shape[0], input_ids.shape[0]
        embeds = torch.cat([self.prompt.expand(rows, -1, -1), self.model.get_input_embeddings()(input_ids)], dim=1)
        attention_mask = torch.cat([attention_mask.new_ones(rows, n), attention_mask], dim=1)
        if labels is not None:
            labels = torch.cat([labels.new_full((rows, n), IGNORE_INDEX), labels], dim=1)
        return self.model(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels)


@pytest.fixture(scope="module")
def rows():
    return without_system_prompt(load_tickets(data_dir() / "tickets" / "train_curated.jsonl")[:8])


def peft_prompted(init: str = "SAMPLE_VOCAB"):
    from peft import PromptTuningConfig, get_peft_model

    torch.manual_seed(0)
    return get_peft_model(fresh_model(), PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=N_VIRTUAL,
                                                            prompt_tuning_init=init))


def answer_batch(tokenizer, rows):
    """Right-padded ids, mask and labels on the answers only, as lesson 04 builds them by hand."""
    encoded = [tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                             return_assistant_tokens_mask=True) for row in rows]
    width = max(len(e["input_ids"]) for e in encoded)
    pad = [width - len(e["input_ids"]) for e in encoded]
    return {
        "input_ids": torch.tensor([e["input_ids"] + [tokenizer.pad_token_id] * p
                                   for e, p in zip(encoded, pad, strict=True)]),
        "attention_mask": torch.tensor([e["attention_mask"] + [0] * p for e, p in zip(encoded, pad, strict=True)]),
        "labels": torch.tensor([[t if a else IGNORE_INDEX for t, a in zip(e["input_ids"], e["assistant_masks"],
                                                                           strict=True)] + [IGNORE_INDEX] * p
                                for e, p in zip(encoded, pad, strict=True)]),
    }


@pytest.mark.parametrize("init", ["SAMPLE_VOCAB", "RANDOM"])
def test_the_soft_prompt_by_hand_equals_peft_in_parameters_outputs_loss_and_gradient(tokenizer, rows, init):
    """The same starting prompt gives the same logits, loss and prompt gradient, to float32 rounding."""
    with_peft = peft_prompted(init)
    peft_prompt = with_peft.prompt_encoder["default"].embedding.weight
    by_hand = SoftPrompt(fresh_model(), peft_prompt)
    hidden = by_hand.model.config.hidden_size
    assert (lora.trainable_parameters(by_hand) == lora.trainable_parameters(with_peft) == N_VIRTUAL * hidden)
    if init == "SAMPLE_VOCAB":  # every virtual token starts as the embedding row of a real token
        table = by_hand.model.get_input_embeddings().weight
        assert all(any(torch.equal(vector, row) for row in table) for vector in peft_prompt)
    batch = answer_batch(tokenizer, rows)
    hand_out, peft_out = by_hand(**batch), with_peft(**batch)
    terms = by_hand.model.config.intermediate_size
    assert hand_out.logits.shape == peft_out.logits.shape == (*batch["input_ids"].shape[:1],
                                                              N_VIRTUAL + batch["input_ids"].shape[1],
                                                              by_hand.model.config.vocab_size)
    assert (hand_out.logits - peft_out.logits).abs().max().item() < float32_tolerance(peft_out.logits, terms=terms)
    assert abs(hand_out.loss.item() - peft_out.loss.item()) < float32_tolerance(peft_out.loss, terms=terms)
    hand_out.loss.backward()
    peft_out.loss.backward()
    gradient = peft_prompt.grad
    assert gradient is not None and gradient.abs().max() > 0
    assert (by_hand.prompt.grad - gradient).abs().max().item() < float32_tolerance(gradient, terms=terms)
    assert all(w.grad is None for w in by_hand.model.parameters())  # the model itself gets no gradient


def test_a_wrong_by_hand_prompt_is_told_apart(tokenizer, rows):
    """The check means something: the soft prompt left out, or one shifted a little, changes the logits."""
    with_peft = peft_prompted()
    batch = answer_batch(tokenizer, rows)
    with torch.no_grad():
        peft_logits = with_peft(**batch).logits
        shifted = SoftPrompt(fresh_model(), with_peft.prompt_encoder["default"].embedding.weight + 1e-2)
        difference = (shifted(**batch).logits - peft_logits).abs().max().item()
    assert difference > 1e3 * float32_tolerance(peft_logits, terms=shifted.model.config.intermediate_size)


def test_the_course_trainer_trains_peft_soft_prompt_and_nothing_else(tmp_path, tokenizer, rows):
    """Lesson 03's trainer on a prompt-tuning model: the soft prompt moves, every weight of the model stays."""
    with_peft = peft_prompted()
    assert training.plain_head_model(with_peft) is None  # its own forward prepends the prompt: the model's own loss
    before = {name: w.detach().clone() for name, w in with_peft.named_parameters()}
    config = training.sft_config(TINY, lesson="04", output_dir=tmp_path, learning_rate=TINY.learning_rate("prompt"),
                                 max_steps=2, per_device_train_batch_size=4, save_strategy="no", eval_strategy="no",
                                 logging_strategy="no", disable_tqdm=True)
    trainer = training.sft_trainer(with_peft, tokenizer, config, rows)
    trainer.train()
    moved = [name for name, w in with_peft.named_parameters() if not torch.equal(w, before[name])]
    assert moved == ["prompt_encoder.default.embedding.weight"]
