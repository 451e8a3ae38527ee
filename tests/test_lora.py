"""LoRA settings and training of lesson 04: answer tokens, the config from the profile, what trains, saved adapters."""

import json
import re

import pytest
import torch

from course_lib import lora, runs
from course_lib.memory import TARGETS, lora_trainable_parameters
from course_lib.paths import data_dir
from course_lib.profiles import PROFILES
from course_lib.tickets import load_tickets, without_system_prompt

from tiny_model import TINY, fresh_model

STEPS = dict(max_steps=2, per_device_train_batch_size=4, logging_strategy="no", disable_tqdm=True)


@pytest.fixture(scope="module")
def rows():
    return without_system_prompt(load_tickets(data_dir() / "tickets" / "train_curated.jsonl")[:16])


def test_answer_tokens_are_the_answers_and_eos(tokenizer):
    rows = [{"messages": [{"role": "user", "content": "zebra quokka"}, {"role": "assistant", "content": '{"a":1}'}]}]
    ids = lora.answer_token_ids(tokenizer, rows)
    assert ids == sorted(set(tokenizer('{"a":1}', add_special_tokens=False)["input_ids"]) | {tokenizer.eos_token_id})
    user_only = set(tokenizer("zebra quokka", add_special_tokens=False)["input_ids"]) - set(ids)
    assert user_only  # the customer's words are not trained


def test_config_from_the_profile():
    config = lora.lora_config(TINY, token_ids=[5, 7])
    assert (config.r, config.lora_alpha, config.lora_dropout) == (TINY.lora_rank, 2 * TINY.lora_rank, 0.0)
    assert set(config.target_modules) == set(TARGETS["all-linear"]) and config.trainable_token_indices == [5, 7]
    attention = lora.lora_config(PROFILES["t4"], targets="attention")
    assert attention.r == 16 and set(attention.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert attention.trainable_token_indices is None
    assert TINY.learning_rate("lora") == 1e-2 and PROFILES["t4"].learning_rate("lora") == 2e-4
    with pytest.raises(ValueError, match="attention"):
        lora.lora_config(TINY, targets="mlp")


def test_the_answer_token_rows_train_where_the_profile_says():
    assert TINY.lora_train_tokens and not PROFILES["t4"].lora_train_tokens and not PROFILES["large"].lora_train_tokens
    for profile in PROFILES.values():
        assert lora.lora_train_tokens(profile) is profile.lora_train_tokens
        assert lora.lora_train_tokens(profile, False) is False and lora.lora_train_tokens(profile, True) is True
    with pytest.raises(ValueError, match=r"train_tokens must be True or False, not 1\..*train_tokens=None"):
        lora.lora_train_tokens(TINY, 1)


def test_saved_settings_record_the_profiles_choice_of_token_rows(rows):
    # lessons 05-07 call load_or_train without train_tokens: on the tiny profile they must find lesson 04's adapter
    assert lora.lora_settings(TINY, rows) == lora.lora_settings(TINY, rows, train_tokens=True)
    assert lora.lora_settings(PROFILES["t4"], rows)["train_tokens"] is False


def test_without_token_rows_only_the_adapter_trains(tmp_path, tokenizer, rows):
    import dataclasses

    model = fresh_model()
    frozen_rows = dataclasses.replace(TINY, lora_train_tokens=False)  # as on the GPU profiles
    trainer = lora.fine_tune(model, tokenizer, frozen_rows, rows, output_dir=tmp_path, **STEPS)
    assert lora.trainable_parameters(trainer.model) == lora_trainable_parameters(model.config, rank=TINY.lora_rank)
    fixed_alpha = lora.fine_tune(fresh_model(), tokenizer, TINY, rows, output_dir=tmp_path, rank=16, alpha=8,
                                 **{**STEPS, "max_steps": 1})
    assert fixed_alpha.model.peft_config["default"].lora_alpha == 8


@pytest.mark.parametrize("rank", [0, -4, 2.0, "8", True])
def test_a_rank_that_is_not_a_positive_whole_number_is_an_error(rows, rank):
    # rank=0 used to become the profile's rank (4 on the tiny profile)
    error = (re.escape(f"rank must be a whole number of at least 1, not {rank!r}.")
             + r".*rank=None for the profile's rank")
    with pytest.raises(ValueError, match=error):
        lora.lora_config(TINY, rank=rank)
    with pytest.raises(ValueError, match=error):
        lora.lora_settings(TINY, rows, rank=rank)
    assert lora.lora_rank(TINY, None) == TINY.lora_rank and lora.lora_rank(TINY, 8) == 8
    with pytest.raises(ValueError, match="alpha must be a whole number of at least 1, not 0"):
        lora.lora_config(TINY, alpha=0)  # was 2 x rank


@pytest.mark.parametrize("max_steps", [0, -5])
def test_an_adapters_step_budget_must_be_a_positive_whole_number(rows, tokenizer, tmp_path, max_steps):
    error = f"max_steps must be a whole number of at least 1, not {max_steps}"
    with pytest.raises(ValueError, match=error):
        lora.lora_settings(TINY, rows, max_steps=max_steps)
    with pytest.raises(ValueError, match=error):  # refused before any model is loaded
        lora.load_or_train(TINY, rows, folder=tmp_path / "adapter", max_steps=max_steps)
    model = fresh_model()
    with pytest.raises(ValueError, match=error):
        lora.fine_tune(model, tokenizer, TINY, rows, output_dir=tmp_path, max_steps=max_steps)
    with pytest.raises(ValueError, match="train_rows is empty"):
        lora.fine_tune(model, tokenizer, TINY, [], output_dir=tmp_path, max_steps=2)
    assert not any("lora_" in name for name, _ in model.named_modules()), "refused before the adapter went in"


def test_only_the_adapter_and_the_answer_rows_train(tmp_path, tokenizer, rows):
    model = fresh_model()
    before = {name: weight.detach().clone() for name, weight in model.named_parameters()}
    trainer = lora.fine_tune(model, tokenizer, TINY, rows, output_dir=tmp_path, **STEPS)
    trainable = lora.trainable_parameters(trainer.model)
    token_ids = lora.answer_token_ids(tokenizer, rows)
    # rank r on every projection, plus one embedding row per answer token: under 5% of the tiny model (lesson 04)
    expected = lora_trainable_parameters(model.config, rank=TINY.lora_rank) + len(token_ids) * model.config.hidden_size
    assert trainable == expected
    assert trainable / sum(before[name].numel() for name in before) < 0.05
    merged = trainer.model.merge_and_unload()
    after = dict(merged.named_parameters())
    embedding = after["model.embed_tokens.weight"]
    others = [i for i in range(embedding.shape[0]) if i not in set(token_ids)]
    assert torch.equal(embedding[others], before["model.embed_tokens.weight"][others])  # the rest stay frozen
    assert not torch.equal(embedding[token_ids], before["model.embed_tokens.weight"][token_ids])
    assert not torch.equal(after["model.layers.0.mlp.down_proj.weight"], before["model.layers.0.mlp.down_proj.weight"])
    assert torch.equal(after["model.norm.weight"], before["model.norm.weight"])  # norms are not adapted


def test_a_saved_adapter_is_reused_only_with_the_same_settings(tmp_path, tokenizer, rows):
    folder = tmp_path / "adapter"
    run = lora.load_or_train(TINY, rows, folder=folder, max_steps=2, base=(fresh_model(), tokenizer))
    assert run.trained and run.message == f"trained from the start to step 2, saved to {folder}"
    assert (folder / "adapter_model.safetensors").is_file() and run.tokenizer is tokenizer and not run.model.training
    assert json.loads((folder / runs.SETTINGS_FILE).read_text())["max_steps"] == 2
    batch = tokenizer(["My order has not arrived."], return_tensors="pt")
    with torch.no_grad():
        expected = run.model(**batch).logits
    again = lora.load_or_train(TINY, rows, folder=folder, max_steps=2)  # on the profile's model, loaded fresh
    assert not again.trained and again.message == f"loaded from {folder}" and not again.model.training
    with torch.no_grad():
        assert torch.equal(again.model(**batch).logits, expected)
    assert lora.load_or_train(TINY, rows, folder=folder, max_steps=2, seed=1).trained  # another seed, another adapter
    assert lora.folder_bytes(folder) > (folder / "adapter_model.safetensors").stat().st_size


def test_all_linear_targets_are_the_modules_peft_calls_all_linear():
    """course_lib.memory.TARGETS["all-linear"] wraps what peft's own "all-linear" wraps, with the same initial A."""
    from peft import LoraConfig, get_peft_model

    def adapter(target_modules):
        torch.manual_seed(0)
        config = LoraConfig(r=4, lora_alpha=8, target_modules=target_modules, task_type="CAUSAL_LM")
        model = get_peft_model(fresh_model(), config)
        return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}

    ours, peft_own = adapter(list(TARGETS["all-linear"])), adapter("all-linear")
    layers = fresh_model().config.num_hidden_layers
    assert ours.keys() == peft_own.keys() and len(ours) == 2 * len(TARGETS["all-linear"]) * layers  # A and B
    assert all(torch.equal(ours[name], peft_own[name]) for name in ours)
