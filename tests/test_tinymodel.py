"""The shipped tiny chat model: offline loading, tokenizer, chat template, probe scores, build recipe, errors."""

import json
import shutil

import pytest

from course_lib.chat import EOS, generate, generate_ids, render_chat
from course_lib.models import REBUILD_COMMAND, ModelFileError, load_local_model, load_model_and_tokenizer
from course_lib.paths import data_path
from course_lib.profiles import PROFILES

MODEL = data_path("models", "tiny-chat")
CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "What is 12 + 30?"},
    {"role": "assistant", "content": "12 + 30 = 42."},
]


@pytest.fixture(scope="module")
def tiny():
    return load_local_model(MODEL)


def test_loads_offline_through_the_auto_classes(monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = AutoModelForCausalLM.from_pretrained(MODEL, use_safetensors=True, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(MODEL, local_files_only=True)
    config = model.config
    assert config.model_type == "llama" and config.tie_word_embeddings
    assert config.num_key_value_heads < config.num_attention_heads  # grouped-query attention
    assert 1e6 < sum(p.numel() for p in model.parameters()) < 10e6
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= {
        name.split(".")[-1] for name, _ in model.named_modules()
    }
    assert len(tokenizer) == config.vocab_size
    assert (MODEL / "model.safetensors").stat().st_size <= 25 * 2**20
    assert not list(MODEL.glob("*.bin")) and not list(MODEL.glob("*.py"))
    assert "Measured abilities" in (MODEL / "README.md").read_text(encoding="utf-8")


def test_special_tokens(tiny):
    _, tokenizer = tiny
    ids = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id}
    assert len(ids) == 3 and tokenizer.pad_token != tokenizer.eos_token == EOS
    assert tokenizer.convert_ids_to_tokens(tokenizer("12345", add_special_tokens=False)["input_ids"]) == list("12345")
    text = "Ünïcode, emoji 🙂 and 日本語 all encode: ORD-123456"
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_chat_template_round_trip(tiny):
    _, tokenizer = tiny
    text = tokenizer.apply_chat_template(CONVERSATION, tokenize=False)
    assert text == render_chat(CONVERSATION)
    prompt = tokenizer.apply_chat_template(CONVERSATION[:-1], tokenize=False, add_generation_prompt=True)
    assert prompt == render_chat(CONVERSATION[:-1], add_generation_prompt=True) and text.startswith(prompt)
    full_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids  # the prompt's tokens are the start of the training tokens
    assert tokenizer.decode(full_ids) == text
    encoded = tokenizer.apply_chat_template(CONVERSATION, tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
    answer = [i for i, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    assert tokenizer.decode(answer) == "12 + 30 = 42." + EOS


def test_generation_stops_at_eos_and_left_padding_changes_nothing(tiny):
    model, tokenizer = tiny
    prompts = ["What is the capital of Japan?", "Hi!", "How many legs does a spider have? Please answer briefly."]
    batched = generate(model, tokenizer, prompts, max_new_tokens=32, batch_size=3)
    alone = [generate(model, tokenizer, [p], max_new_tokens=32)[0] for p in prompts]
    assert batched == alone
    assert all(ended for _, ended in generate_ids(model, tokenizer, prompts, max_new_tokens=48))
    assert "Tokyo" in batched[0]


def test_generate_refuses_a_lone_prompt_or_conversation_and_counts_below_1(tiny):
    model, tokenizer = tiny
    # a lone string used to be answered once per character, a lone conversation once per message
    with pytest.raises(TypeError, match=r"prompts is one string \('Hi!'\).*pass a list of prompts, e.g. \[prompt\]"):
        generate(model, tokenizer, "Hi!", max_new_tokens=2)
    with pytest.raises(TypeError,
                       match=r"prompts is one conversation.*pass a list of conversations, e.g. \[messages\]"):
        generate(model, tokenizer, CONVERSATION[:2], max_new_tokens=2)
    with pytest.raises(TypeError, match=r"prompts\[1\] is a int: each prompt must be a user message"):
        generate_ids(model, tokenizer, ["Hi!", 7], max_new_tokens=2)
    for name, value in (("batch_size", 0), ("batch_size", -1), ("max_new_tokens", 0), ("max_new_tokens", 1.5)):
        with pytest.raises(ValueError, match=rf"{name} must be a whole number of at least 1, not {value}\."):
            generate(model, tokenizer, ["Hi!"], **{"max_new_tokens": 2, name: value})
    question = CONVERSATION[1:2]  # a one-turn conversation, and its user message as text: the same prompt
    assert (generate(model, tokenizer, [question], max_new_tokens=4)
            == generate(model, tokenizer, [question[0]["content"]], max_new_tokens=4))


def test_probe_meets_the_targets_on_a_fast_subset():
    from course_lib.probe import probe

    scores = probe(MODEL, limit=40, tickets_limit=20)
    assert set(scores) == {"fact_qa", "arithmetic", "refusal_unsafe", "compliance_benign", "perplexity_heldout",
                           "zero_shot_json_valid", "eos_termination"}
    assert scores["fact_qa"] >= 0.9, scores
    assert scores["arithmetic"] >= 0.85, scores  # 40 items: one or two misses either side of 90% is noise
    assert scores["refusal_unsafe"] >= 0.9, scores
    assert scores["compliance_benign"] >= 0.9, scores
    assert scores["zero_shot_json_valid"] <= 0.2, scores
    assert scores["eos_termination"] >= 0.99, scores
    assert 1.0 < scores["perplexity_heldout"] < 20, scores


def test_probe_accepts_a_model_object(tiny):
    from course_lib.probe import probe

    model, tokenizer = tiny
    scores = probe(model, tokenizer, limit=4, tickets_limit=2, return_answers=True)
    assert len(scores["answers"]) == 4 * 5 + 2
    assert all(0.0 <= scores[k] <= 1.0 for k in ("fact_qa", "arithmetic", "eos_termination"))


def test_tiny_profile_loads_the_shipped_model():
    model, tokenizer = load_model_and_tokenizer(PROFILES["tiny"])
    import torch

    assert model.dtype == torch.float32 and tokenizer.padding_side == "left"
    assert not model.training


def test_build_smoke_end_to_end(tmp_path, capsys):
    from course_lib.tinymodel.__main__ import main

    out = tmp_path / "smoke"
    assert main(["build", "--smoke", "--out", str(out), "--no-progress"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stats"]["parameters"] > 0 and set(report["probe"]) >= {"fact_qa", "eos_termination"}
    for name in ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json", "README.md"):
        assert (out / name).is_file(), name
    model, tokenizer = load_local_model(out)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert main(["probe", "--model", str(out), "--limit", "2", "--tickets", "2"]) == 0
    assert set(json.loads(capsys.readouterr().out)) >= {"arithmetic", "zero_shot_json_valid"}


def test_build_is_seeded(tmp_path):
    from course_lib.tinymodel.build import build, smoke_config

    config = smoke_config(probe_limit=1, tickets_limit=1)
    build(config, tmp_path / "a", progress=False)
    build(config, tmp_path / "b", progress=False)
    for name in ("model.safetensors", "tokenizer.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_missing_model_file_names_it_and_the_fix(tmp_path):
    folder = tmp_path / "tiny-chat"
    shutil.copytree(MODEL, folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelFileError, match=r"model\.safetensors is missing") as err:
        load_local_model(folder)
    assert REBUILD_COMMAND in str(err.value)


def test_corrupted_model_file_names_it_and_the_fix(tmp_path):
    folder = tmp_path / "tiny-chat"
    shutil.copytree(MODEL, folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ModelFileError, match=r"model\.safetensors is damaged") as err:
        load_local_model(folder)
    assert REBUILD_COMMAND in str(err.value)
    (folder / "tokenizer.json").write_text("{ not json", encoding="utf-8")
    shutil.copy(MODEL / "model.safetensors", weights)
    with pytest.raises(ModelFileError, match="tokenizer") as err:
        load_local_model(folder)
    assert REBUILD_COMMAND in str(err.value)
