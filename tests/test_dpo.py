"""Lesson 06's DPO pieces: the loss by hand against TRL's, answer log-probabilities, and preference files."""

import json
import math
import re

import pytest
import torch

from course_lib import dpo
from course_lib.chat import EOS
from course_lib.claims import float32_tolerance
from course_lib.models import load_local_model
from course_lib.paths import data_path
from course_lib.preferences import PreferenceError

from tiny_model import with_adapter

PREFERENCES = data_path("tickets", "preferences.jsonl")
GOOD_ROW = {"prompt": [{"role": "user", "content": "My order never came."}],
            "chosen": [{"role": "assistant", "content": '{"category":"shipping/lost_package"}'}],
            "rejected": [{"role": "assistant", "content": "Sure! Here is the triage."}]}


def tiny_model():
    """A fresh copy of the tiny chat model (TRL patches the forward of the model it is given)."""
    return load_local_model(data_path("models", "tiny-chat"))


@pytest.fixture(scope="module")
def rows():
    """Five shipped preference pairs, one of each fault, as TRL reads them (prompt, chosen, rejected)."""
    return [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in dpo.load_preferences(PREFERENCES)[:5]]


def dpo_trainer(rows, tmp_path, beta):
    """TRL's DPOTrainer on the tiny model in float32, with the reference log-probabilities computed up front."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    model, tokenizer = tiny_model()
    args = DPOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True, bf16=False, beta=beta,
                     loss_type="sigmoid", precompute_ref_log_probs=True, per_device_train_batch_size=len(rows),
                     disable_tqdm=True)
    return DPOTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)


def trl_batch(trainer):
    """The whole training set as one batch, collated by TRL: chosen rows first, then rejected rows."""
    return trainer.data_collator([trainer.train_dataset[i] for i in range(len(trainer.train_dataset))])


@pytest.fixture(scope="module")
def trainer(rows, tmp_path_factory):
    return dpo_trainer(rows, tmp_path_factory.mktemp("dpo"), beta=0.1)


# ---------------------------------------------------------------------------------------------------------
# the loss


@pytest.mark.parametrize("beta", [0.05, 0.1, 0.5])
def test_loss_by_hand_equals_trl_on_random_reference_logps(rows, tmp_path, beta):
    trainer = dpo_trainer(rows, tmp_path, beta)
    batch = trl_batch(trainer)
    policy_chosen, policy_rejected = trainer.compute_ref_log_probs(trainer.model, batch)  # TRL's own sums
    generator = torch.Generator().manual_seed(0)
    batch["ref_chosen_logps"] = policy_chosen + 20 * torch.randn(len(rows), generator=generator)
    batch["ref_rejected_logps"] = policy_rejected + 20 * torch.randn(len(rows), generator=generator)

    trl_loss = trainer.compute_loss(trainer.model, batch)
    losses, chosen_rewards, rejected_rewards = dpo.dpo_loss(
        policy_chosen, policy_rejected, batch["ref_chosen_logps"], batch["ref_rejected_logps"], beta=beta)

    assert losses.shape == (len(rows),)
    assert losses.mean().item() == pytest.approx(trl_loss.item(), abs=1e-5)
    assert 0 < (chosen_rewards > rejected_rewards).sum() < len(rows), "the batch mixes won and lost pairs"
    logged = {k: v[-1] for k, v in trainer._metrics["eval"].items() if k.startswith("rewards/")}
    assert logged.keys() == dpo.reward_stats(chosen_rewards, rejected_rewards).keys()
    for key, value in dpo.reward_stats(chosen_rewards, rejected_rewards).items():
        assert value == pytest.approx(logged[key], abs=1e-5), key



def assert_equal_up_to_fp32_rounding(ours, theirs, *, terms, what):
    """Equal but for the order of float32 sums (`course_lib.claims.float32_tolerance`).

    Both heads add the same `terms` (the vocabulary, in log Z and its gradient) in a different order: 4096 terms allow
    64 * eps32 (7.6e-6) relative. Measured on AVX-512, AVX2 and the generic kernels, each head stays within 2.2e-5 of
    a float64 run on fields of size 6 to 34 (about 1e-6 relative). A real difference in what is computed (a wrong
    position, a missing mask) is of order 1.
    """
    tolerance = float32_tolerance(theirs, terms)
    gap = (ours - theirs).abs().max().item()
    assert gap <= tolerance, f"{what}: differs by {gap:.3g}, more than float32 rounding allows ({tolerance:.3g})"

@pytest.mark.parametrize("adapter", [False, True])
def test_plain_lm_head_equals_trls_fused_head_field_by_field(rows, tmp_path, adapter):
    # PlainHeadDPOTrainer swaps TRL's fused LM head for one that scores the answer positions alone; every field TRL
    # reads from it, and the gradient of the log-probabilities, must be the same
    from trl.trainer.utils import add_fused_lm_head

    from course_lib import lora
    from course_lib.profiles import PROFILES

    batch = trl_batch(dpo_trainer(rows, tmp_path, beta=0.1))
    labels = batch["input_ids"].masked_fill(batch["completion_mask"] == 0, -100)
    outputs, gradients = [], []
    for plain in (False, True):
        model, _ = tiny_model()
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "log_sum_sq_probs", "mean_logits", "is_top1"))
        if plain:
            dpo.plain_lm_head(model)
        if adapter:
            model = with_adapter(model, lora.lora_config(PROFILES["tiny"]))
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=labels,
                    fused_lm_head=True)
        out.log_probs.sum().backward()
        outputs.append(out)
        gradients.append(next(w.grad for name, w in model.named_parameters() if w.requires_grad and "q_proj" in name))
    trl, ours = outputs
    assert (ours.label_mask == trl.label_mask).all() and ours.label_mask.sum() > 0
    vocab = model.config.vocab_size
    for field in ("loss", "log_probs", "mean_logits", "entropy", "log_sum_sq_probs"):
        assert_equal_up_to_fp32_rounding(getattr(ours, field), getattr(trl, field), terms=vocab, what=field)
    assert (ours.is_top1 == trl.is_top1).all()
    assert_equal_up_to_fp32_rounding(gradients[1], gradients[0], terms=vocab, what="q_proj gradient")
    assert (ours.log_probs[~ours.label_mask] == 0).all()  # zero off the answers, as TRL's fields are


def test_dpo_trainer_scores_with_the_plain_head(rows, tmp_path):
    from course_lib.profiles import PROFILES

    model, tokenizer = tiny_model()
    trainer = dpo.dpo_trainer(model, tokenizer, PROFILES["tiny"], rows, output_dir=tmp_path, max_steps=1)
    assert isinstance(trainer, dpo.PlainHeadDPOTrainer)
    assert trainer.model.get_base_model().forward.__qualname__.startswith("plain_lm_head")


def test_loss_at_the_reference_is_log_2_and_falls_as_the_chosen_answer_gains():
    logps = torch.tensor([-12.0, -30.0, -7.5])
    losses, chosen_rewards, rejected_rewards = dpo.dpo_loss(logps, logps - 3, logps, logps - 3, beta=0.1)
    assert torch.allclose(losses, torch.full((3,), math.log(2)))
    assert chosen_rewards.abs().max() == 0 and rejected_rewards.abs().max() == 0

    policy_chosen = logps.clone().requires_grad_(True)
    loss = dpo.dpo_loss(policy_chosen, logps - 3, logps, logps - 3, beta=0.1)[0].mean()
    loss.backward()
    assert (policy_chosen.grad < 0).all(), "raising the chosen answer's log-probability lowers the loss"
    assert not dpo.dpo_loss(policy_chosen, logps, logps, logps)[1].requires_grad, "rewards are for reporting only"


def test_reward_stats_by_hand():
    stats = dpo.reward_stats(torch.tensor([0.5, -0.2, 0.1, 0.0]), torch.tensor([0.1, 0.3, -0.3, 0.0]))
    assert stats["rewards/margins"] == pytest.approx((0.4 - 0.5 + 0.4 + 0.0) / 4)
    assert stats["rewards/accuracies"] == 0.5  # a tie is not a win
    assert stats["rewards/chosen"] == pytest.approx(0.1) and stats["rewards/rejected"] == pytest.approx(0.025)


def test_loss_rejects_mismatched_shapes_and_a_bad_beta():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="one shape"):
        dpo.dpo_loss(x, x, x, torch.zeros(2))
    with pytest.raises(ValueError, match="beta must be positive"):
        dpo.dpo_loss(x, x, x, x, beta=0.0)
    with pytest.raises(ValueError, match="one chosen and one rejected reward per pair"):
        dpo.reward_stats(x, torch.zeros(2))


# ---------------------------------------------------------------------------------------------------------
# answer log-probabilities


def test_tokenisation_matches_trl(rows, trainer):
    tokenizer = trainer.processing_class
    for row, tokenized in zip(rows, trainer.train_dataset, strict=True):
        prompt_ids, chosen_ids = dpo.pair_ids(tokenizer, row["prompt"], row["chosen"])
        _, rejected_ids = dpo.pair_ids(tokenizer, row["prompt"], row["rejected"])
        assert (prompt_ids, chosen_ids, rejected_ids) == (
            tokenized["prompt_ids"], tokenized["chosen_ids"], tokenized["rejected_ids"])
    assert tokenizer.decode(prompt_ids).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(chosen_ids) == row["chosen"][0]["content"] + EOS + "\n"


def test_sequence_logps_equals_one_sequence_at_a_time(rows):
    model, tokenizer = tiny_model()
    model.double()  # float64: padding and masking must change nothing, not merely little
    prompts = [r["prompt"] for r in rows]
    answers = [r["rejected"] for r in rows]  # lengths differ, so batches are padded
    batched = dpo.sequence_logps(model, tokenizer, prompts, answers, batch_size=3)
    assert not batched.requires_grad
    for i, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
        prompt_ids, completion_ids = dpo.pair_ids(tokenizer, prompt, answer)
        ids = torch.tensor([prompt_ids + completion_ids])
        with torch.no_grad():
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, :-1], dim=-1)
        token_logps = logprobs.gather(-1, ids[0, 1:, None]).squeeze(-1)
        assert batched[i].item() == pytest.approx(token_logps[len(prompt_ids) - 1:].sum().item(), abs=1e-8)
    texts = dpo.sequence_logps(model, tokenizer, [p[-1]["content"] for p in prompts[:1]], [answers[0][0]["content"]])
    as_chat = dpo.sequence_logps(model, tokenizer, [[p[-1]] for p in prompts[:1]], answers[:1])
    assert texts.item() == as_chat.item(), "a text prompt is the user's turn, a text answer the assistant's"


def test_sequence_logps_equals_trl_on_the_same_batch(rows, trainer):
    batch = trl_batch(trainer)
    trl_chosen, trl_rejected = trainer.compute_ref_log_probs(trainer.model, batch)
    tokenizer = trainer.processing_class
    prompts = [r["prompt"] for r in rows]
    chosen = dpo.sequence_logps(trainer.model, tokenizer, prompts, [r["chosen"] for r in rows])
    rejected = dpo.sequence_logps(trainer.model, tokenizer, prompts, [r["rejected"] for r in rows])
    vocab = trainer.model.config.vocab_size  # each answer token's log-probability is a log-sum over the vocabulary
    assert_equal_up_to_fp32_rounding(chosen, trl_chosen, terms=vocab, what="chosen")
    assert_equal_up_to_fp32_rounding(rejected, trl_rejected, terms=vocab, what="rejected")


def test_max_length_cuts_like_trl(rows, trainer):
    from trl.trainer.dpo_trainer import DataCollatorForPreference

    tokenizer = trainer.processing_class
    collate = DataCollatorForPreference(pad_token_id=tokenizer.pad_token_id, max_length=120)
    batch = collate([trainer.train_dataset[i] for i in range(len(rows))])
    trl_chosen, _ = trainer.compute_ref_log_probs(trainer.model, batch)
    prompts, chosen = [r["prompt"] for r in rows], [r["chosen"] for r in rows]
    cut = dpo.sequence_logps(trainer.model, tokenizer, prompts, chosen, max_length=120)
    assert_equal_up_to_fp32_rounding(cut, trl_chosen, terms=trainer.model.config.vocab_size, what="cut")
    assert (cut > dpo.sequence_logps(trainer.model, tokenizer, prompts, chosen)).all(), "fewer tokens, fewer losses"
    with pytest.raises(ValueError, match=r"prompt 0 is \d+ tokens, so max_length=20 leaves no room"):
        dpo.sequence_logps(trainer.model, tokenizer, prompts, chosen, max_length=20)


def test_sequence_logps_with_gradients_trains_and_leaves_the_mode(rows):
    model, tokenizer = tiny_model()
    model.train()
    logps = dpo.sequence_logps(model, tokenizer, [rows[0]["prompt"]], [rows[0]["chosen"]], requires_grad=True)
    logps.sum().backward()
    assert model.model.embed_tokens.weight.grad.abs().sum() > 0
    assert model.training
    model.eval()
    dpo.sequence_logps(model, tokenizer, [rows[0]["prompt"]], [rows[0]["chosen"]])
    assert not model.training


def test_sequence_logps_rejects_unpaired_input():
    model, tokenizer = tiny_model()
    with pytest.raises(ValueError, match="2 prompts and 1 completions"):
        dpo.sequence_logps(model, tokenizer, ["a", "b"], ["x"])
    tokenizer.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        dpo.sequence_logps(model, tokenizer, ["a"], ["x"])


# ---------------------------------------------------------------------------------------------------------
# preference files


def test_shipped_preferences_load():
    loaded = dpo.load_preferences(PREFERENCES)
    assert len(loaded) == 800
    assert {r["fault"] for r in loaded} == {"invalid_json", "wrong_field", "prose_wrapped", "leaked_pii", "verbose"}


@pytest.mark.parametrize(("bad_line", "message"), [
    (json.dumps({k: v for k, v in GOOD_ROW.items() if k != "rejected"}), "field 'rejected' is missing"),
    (json.dumps(dict(GOOD_ROW, rejected=GOOD_ROW["chosen"])), "'chosen' and 'rejected' are identical"),
    (json.dumps(dict(GOOD_ROW, prompt=[{"role": "user", "content": "  "}])), "field 'prompt' is empty"),
    (json.dumps(dict(GOOD_ROW, prompt="")), "field 'prompt' is empty"),
    (json.dumps(GOOD_ROW)[:-1], "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "a preference row must be a JSON object"),
])
def test_a_malformed_row_names_file_line_and_field(tmp_path, bad_line, message):
    path = tmp_path / "preferences.jsonl"
    path.write_text("\n".join([json.dumps(GOOD_ROW), json.dumps(GOOD_ROW), bad_line, json.dumps(GOOD_ROW)]) + "\n",
                    encoding="utf-8")
    with pytest.raises(PreferenceError, match=re.escape(f"{path}, line 3: {message}")):
        dpo.load_preferences(path)


def test_a_missing_file_names_the_command_that_rebuilds_it(tmp_path):
    with pytest.raises(PreferenceError, match="python -m course_lib.datafiles"):
        dpo.load_preferences(tmp_path / "nope.jsonl")


# ---------------------------------------------------------------------------------------------------------
# the fault rule, the habits it measures, and the trainer's settings


def test_the_rule_sees_each_shipped_fault_and_nothing_in_the_chosen_answers():
    from course_lib.preferences import answer_faults

    for row in dpo.load_preferences(PREFERENCES):
        assert answer_faults(row["chosen"][0]["content"]) == [], row["id"]
        expected = [] if row["fault"] == "wrong_field" else [row["fault"]]  # a wrong field needs the label
        assert answer_faults(row["rejected"][0]["content"]) == expected, row["id"]


@pytest.mark.parametrize(("answer", "faults"), [
    ('{"summary":"Order lost."}', []),
    ('  {"summary":"Order lost."}\n', []),
    ('Sure! {"summary":"Order lost."}', ["prose_wrapped"]),
    ('{"summary":"Order lost, call +1 415 555 0133."} Thanks!', ["prose_wrapped", "leaked_pii"]),
    ('{"summary":"' + "x" * 121 + '"}', ["verbose"]),
    ('{"summary":"Order lost."', ["invalid_json"]),
    ("[1, 2]", ["invalid_json"]),
    ("", ["invalid_json"]),
])
def test_answer_faults_by_hand(answer, faults):
    from course_lib.preferences import answer_faults

    assert answer_faults(answer) == faults


def test_with_bad_habits_changes_the_share_asked_and_keeps_the_rest():
    from course_lib.preferences import TARGETED_FAULTS, answer_faults, with_bad_habits
    from course_lib.tickets import load_tickets, without_system_prompt

    rows = without_system_prompt(load_tickets(data_path("tickets", "dev.jsonl")))
    changed = with_bad_habits(rows, share=0.5, seed=1)
    assert len(changed) == len(rows) and changed == with_bad_habits(rows, share=0.5, seed=1)
    faulty = [r for r in changed if "fault" in r]
    assert 0.4 < len(faulty) / len(rows) < 0.6
    assert {r["fault"] for r in faulty} == set(TARGETED_FAULTS)
    for row in faulty:
        assert answer_faults(row["messages"][-1]["content"]) == [row["fault"]], row["id"]
        assert [m["role"] for m in row["messages"]] == ["user", "assistant"]
    unchanged = [r for r, c in zip(rows, changed, strict=True) if "fault" not in c]
    assert [r for r in changed if "fault" not in r] == unchanged
    assert with_bad_habits(rows, share=0.0) == rows
    with pytest.raises(ValueError, match="share must be between 0 and 1"):
        with_bad_habits(rows, share=1.5)


def test_trl_rows_drop_the_system_turn_unless_asked():
    rows = dpo.load_preferences(PREFERENCES)[:3]
    plain = dpo.trl_rows(rows)
    assert all(set(r) == {"prompt", "chosen", "rejected"} for r in plain)
    assert all([t["role"] for t in r["prompt"]] == ["user"] for r in plain)
    assert dpo.trl_rows(rows, system_prompt=True)[0]["prompt"] == rows[0]["prompt"]


def test_dpo_config_follows_the_profile_and_overrides():
    from course_lib import PROFILES

    config = dpo.dpo_config(PROFILES["tiny"], beta=0.5, output_dir="unused", max_steps=7, learning_rate=1e-3)
    assert (config.beta, config.max_steps, config.learning_rate) == (0.5, 7, 1e-3)
    assert not config.bf16 and not config.fp16 and config.use_cpu, "the tiny profile trains in float32 on the CPU"
    assert config.loss_type == ["sigmoid"] and not config.precompute_ref_log_probs  # each pair is seen once
    assert config.per_device_train_batch_size == PROFILES["tiny"].batch_size // 2, "two answers a pair"
    t4 = dpo.dpo_config(PROFILES["t4"], output_dir="unused", max_steps=7)
    assert t4.fp16 and not t4.bf16 and not t4.use_cpu
    with pytest.raises(KeyError, match="no step budget for lesson '99'"):
        dpo.dpo_config(PROFILES["tiny"], lesson="99", output_dir="unused")


@pytest.mark.parametrize("beta", [0, -0.1, float("nan"), True])
def test_dpo_config_refuses_a_beta_that_is_not_above_0(beta):
    from course_lib import PROFILES

    error = re.escape(f"beta must be a number above 0, not {beta!r}.") + ".*lesson 06 uses 0.1"
    with pytest.raises(ValueError, match=error):
        dpo.dpo_config(PROFILES["tiny"], beta=beta, output_dir="unused")
    with pytest.raises(ValueError, match=error):
        dpo.dpo_settings(PROFILES["tiny"], [], [], beta=beta)


def test_dpo_refuses_a_step_budget_below_1_no_pairs_and_an_empty_batch(tmp_path):
    from course_lib import PROFILES

    # max_steps=0 used to become the profile's budget, and -5 transformers' "train by epochs"
    for max_steps in (0, -5):
        with pytest.raises(ValueError, match=f"max_steps must be a whole number of at least 1, not {max_steps}"):
            dpo.dpo_config(PROFILES["tiny"], output_dir="unused", max_steps=max_steps)
        with pytest.raises(ValueError, match=f"max_steps must be a whole number of at least 1, not {max_steps}"):
            dpo.dpo_settings(PROFILES["tiny"], [], [], max_steps=max_steps)
        with pytest.raises(ValueError, match=f"max_steps must be a whole number of at least 1, not {max_steps}"):
            # refused before any training
            dpo.load_or_train(PROFILES["tiny"], [], [], folder=tmp_path / "model", max_steps=max_steps)
    model, tokenizer = tiny_model()
    with pytest.raises(ValueError, match="pairs is empty: .*data/tickets/preferences.jsonl"):
        dpo.dpo_trainer(model, tokenizer, PROFILES["tiny"], [], output_dir=tmp_path)
    for batch_size in (0, -1):
        with pytest.raises(ValueError, match=f"batch_size must be a whole number of at least 1, not {batch_size}"):
            dpo.sequence_logps(model, tokenizer, ["a"], ["x"], batch_size=batch_size)


def test_sampled_generation_is_seeded_and_differs_from_greedy():
    from course_lib.chat import generate

    model, tokenizer = tiny_model()
    prompts = ["My order never came.", "The app crashes."]
    torch.manual_seed(0)
    first = generate(model, tokenizer, prompts, max_new_tokens=12, temperature=1.0)
    torch.manual_seed(0)
    assert generate(model, tokenizer, prompts, max_new_tokens=12, temperature=1.0) == first
    greedy = generate(model, tokenizer, prompts, max_new_tokens=12)
    assert greedy == generate(model, tokenizer, prompts, max_new_tokens=12)
    assert first != generate(model, tokenizer, prompts, max_new_tokens=12)
    with pytest.raises(ValueError, match="temperature must be 0"):
        generate(model, tokenizer, prompts, temperature=-1.0)


def test_dpo_settings_change_with_what_decides_the_model():
    from course_lib import PROFILES
    from course_lib.tickets import load_tickets, without_system_prompt

    rows = without_system_prompt(load_tickets(data_path("tickets", "dev.jsonl")))
    pairs = dpo.trl_rows(dpo.load_preferences(PREFERENCES)[:20])
    settings = dpo.dpo_settings(PROFILES["tiny"], rows, pairs)
    assert json.loads(json.dumps(settings)) == settings
    assert settings == dpo.dpo_settings(PROFILES["tiny"], rows, pairs)
    assert settings != dpo.dpo_settings(PROFILES["tiny"], rows, pairs, beta=0.5)
    assert settings != dpo.dpo_settings(PROFILES["tiny"], rows, pairs[:-1])
    assert settings != dpo.dpo_settings(PROFILES["tiny"], rows[:-1], pairs)
    assert settings["max_steps"] == PROFILES["tiny"].max_steps["06"]
    assert dpo.dpo_settings(PROFILES["tiny"], rows, pairs, max_steps=5)["max_steps"] == 5


def test_load_or_train_reuses_a_model_saved_with_the_same_settings(tmp_path):
    from course_lib import PROFILES, runs
    from course_lib.tickets import load_tickets, without_system_prompt

    rows = without_system_prompt(load_tickets(data_path("tickets", "dev.jsonl")))
    pairs = dpo.trl_rows(dpo.load_preferences(PREFERENCES)[:20])
    model, tokenizer = tiny_model()
    with torch.no_grad():
        model.model.norm.weight.mul_(0.5)  # a model that differs from the base one, to tell them apart
    folder = runs.save_model(model, tokenizer, tmp_path / "model", dpo.dpo_settings(PROFILES["tiny"], rows, pairs))
    loaded = dpo.load_or_train(PROFILES["tiny"], rows, pairs, folder=folder)
    assert not loaded.trained and loaded.message == f"loaded from {folder}" and not loaded.model.training
    assert torch.equal(loaded.model.model.norm.weight, model.model.norm.weight)
