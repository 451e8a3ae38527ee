"""The quantisation helpers of lessons 05a and 05b: the bitsandbytes config from the profile, the tiny model in 4 and
8 bits on the CPU, its footprint against fp32 and the memory planner, and QLoRA training that keeps training after a
resume."""

import re

import pytest
import torch

from course_lib import lora, memory, runs
from course_lib.models import load_model_and_tokenizer
from course_lib.paths import data_path
from course_lib.profiles import PROFILES
from course_lib.quantization import KeepTrainableFloat32, bnb_config, footprint_bytes, load_quantized
from course_lib.tickets import load_tickets, without_system_prompt

TINY = PROFILES["tiny"]
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def fp32_model():
    return load_model_and_tokenizer(TINY)[0]


@pytest.fixture(scope="module")
def nf4_model():
    return load_quantized(TINY, bits=4)


def projections(model):
    return [module for name, module in model.named_modules() if name.split(".")[-1] in PROJECTIONS]


# ---------------------------------------------------------------------------------------------------------
# the config


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_4bit_config_is_nf4_with_double_quantisation_computing_in_the_profile_dtype(name):
    profile = PROFILES[name]
    config = bnb_config(profile, bits=4)
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is True
    assert config.bnb_4bit_compute_dtype == getattr(torch, profile.dtype)


def test_double_quantisation_can_be_switched_off_and_8_bits_asked_for():
    assert bnb_config(TINY, bits=4, double_quant=False).bnb_4bit_use_double_quant is False
    config = bnb_config(TINY, bits=8)
    assert config.load_in_8bit and not config.load_in_4bit


@pytest.mark.parametrize("bits", [2, 3, 16, 32, True])
def test_unsupported_bits_say_what_is_supported_and_what_to_use_instead(bits):
    with pytest.raises(ValueError, match=r"4 bits .* 8 bits .*load_model_and_tokenizer"):
        bnb_config(TINY, bits=bits)
    with pytest.raises(ValueError, match="not supported"):
        load_quantized(TINY, bits=bits)


# ---------------------------------------------------------------------------------------------------------
# the tiny model in 4 and 8 bits


def test_4bit_tiny_model_has_nf4_projections_and_keeps_the_rest_in_the_profile_dtype(nf4_model):
    import bitsandbytes as bnb

    model, tokenizer = nf4_model
    layers = projections(model)
    assert len(layers) == 7 * model.config.num_hidden_layers
    for layer in layers:
        assert isinstance(layer, bnb.nn.Linear4bit)
        assert layer.weight.quant_state.quant_type == "nf4" and layer.weight.quant_state.nested
    assert model.get_input_embeddings().weight.dtype == torch.float32
    assert model.is_loaded_in_4bit and tokenizer.pad_token_id != tokenizer.eos_token_id


def test_4bit_footprint_is_under_a_third_of_fp32_and_matches_the_planner(fp32_model, nf4_model):
    model = nf4_model[0]
    fp32, nf4 = footprint_bytes(fp32_model), footprint_bytes(model)
    assert fp32 == fp32_model.get_memory_footprint()  # nothing but parameters and buffers to count
    assert nf4 < fp32 / 2.8  # the tiny model keeps a quarter of its parameters (the embeddings) in fp32
    assert nf4 > model.get_memory_footprint()  # transformers' count leaves out the block scales
    # the planner counts codes and scales; bitsandbytes also keeps two code tables per weight (16 and 256 fp32 values)
    planned = memory.estimate_memory(model.config, method="qlora", dtype="float32").weights
    code_tables = len(projections(model)) * (16 + 256) * 4
    assert nf4 - code_tables == pytest.approx(planned, abs=1024)  # up to the buffers (rotary frequencies)


def test_4bit_layers_compute_in_inference_as_in_training_on_every_cpu():
    # bitsandbytes 0.50 would repack a layer for a bfloat16 kernel at its first inference on a CPU with AVX-512 bf16
    import bitsandbytes.functional as bnbf

    model, _ = load_quantized(TINY, bits=4)
    layer = projections(model)[0]
    x = torch.randn(3, layer.in_features, generator=torch.Generator().manual_seed(0))
    assert not model.training
    with torch.no_grad():
        out = layer(x)
    state = layer.weight.quant_state
    assert state.nested and not getattr(state, "packing_format_for_cpu", False), "the layer was repacked"
    w = bnbf.dequantize_4bit(layer.weight.data, state)  # the weights the layer holds, dequantised
    exact = x.double() @ w.double().T
    bound = layer.in_features * torch.finfo(torch.float32).eps * (x.abs().double() @ w.abs().double().T)
    assert ((out.double() - exact).abs() <= bound).all()  # a float32 product of these weights, not a bfloat16 one


def test_4bit_model_generates_as_many_tokens_as_the_fp32_model(fp32_model):
    model, tokenizer = load_quantized(TINY, bits=4)
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "My order has not arrived."}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    settings = dict(max_new_tokens=12, min_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    quantized = model.generate(**prompt, **settings)
    full = fp32_model.generate(**prompt, **settings)
    assert quantized.shape == full.shape == (1, prompt["input_ids"].shape[1] + 12)


def test_8bit_tiny_model_sits_between_4bit_and_fp32(fp32_model, nf4_model):
    import bitsandbytes as bnb

    model, _ = load_quantized(TINY, bits=8)
    assert all(isinstance(layer, bnb.nn.Linear8bitLt) for layer in projections(model))
    assert footprint_bytes(nf4_model[0]) < footprint_bytes(model) < footprint_bytes(fp32_model)


def test_footprint_counts_shared_tensors_once():
    layer = torch.nn.Linear(8, 8, bias=False)
    tied = torch.nn.ModuleList([layer, layer])
    assert footprint_bytes(tied) == footprint_bytes(layer) == 8 * 8 * 4


# ---------------------------------------------------------------------------------------------------------
# QLoRA training


def test_keep_trainable_float32_casts_trainable_parameters_in_place():
    model = torch.nn.Linear(4, 4).to(torch.bfloat16)
    model.bias.requires_grad_(False)
    weight = model.weight
    KeepTrainableFloat32().on_train_begin(None, None, None, model=model)
    assert model.weight is weight and weight.dtype == torch.float32
    assert model.bias.dtype == torch.bfloat16  # frozen parameters are left alone


def test_qlora_trains_on_the_cpu_and_keeps_training_after_a_resume(tmp_path):
    from peft import prepare_model_for_kbit_training

    model, tokenizer = load_quantized(TINY, bits=4)
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    rows = without_system_prompt(load_tickets(data_path("tickets", "train_curated.jsonl")))[:8]
    stop = runs.StopAtStepCallback(1)
    trainer = lora.fine_tune(model, tokenizer, TINY, rows, lesson="05", output_dir=tmp_path, seed=0, max_steps=2,
                             per_device_train_batch_size=2, callbacks=[KeepTrainableFloat32(), stop],
                             disable_tqdm=True, logging_strategy="no")
    trainable = {name: p for name, p in trainer.model.named_parameters() if p.requires_grad}
    assert trainable and all(p.dtype == torch.float32 for p in trainable.values())
    after_one = {name: p.detach().clone() for name, p in trainable.items()}
    trainer.remove_callback(stop)
    assert runs.train(trainer, resume=True).global_step == 2
    # the resumed step updated the very parameters the model uses
    now = dict(trainer.model.named_parameters())
    assert all(now[name] is p for name, p in trainable.items())
    assert any(not torch.equal(now[name], after_one[name]) for name in trainable if "lora_B" in name)


def test_a_saved_qlora_adapter_is_reused_and_an_interrupted_run_is_finished_by_a_second_call(tmp_path):
    from course_lib import quantization

    rows = without_system_prompt(load_tickets(data_path("tickets", "train_curated.jsonl"))[:32])
    folder = tmp_path / "adapter"
    half = quantization.load_or_train(TINY, rows, folder=folder, max_steps=2, stop_at=1)
    assert half.model is None and not half.finished and half.trained and "stopped at step 1 of 2" in half.message
    assert not (folder / runs.SETTINGS_FILE).exists() and runs.last_checkpoint(tmp_path / "runs")
    run = quantization.load_or_train(TINY, rows, folder=folder, max_steps=2, stop_at=1)
    model, tokenizer = run.model, run.tokenizer
    assert run.trained and run.finished and run.message.startswith("resumed from a checkpoint to step 2")
    assert (folder / "adapter_model.safetensors").is_file() and not model.training
    assert not (tmp_path / "runs").exists()  # checkpoints removed once the adapter is saved
    assert {p.dtype for p in model.parameters() if p.requires_grad} <= {torch.float32}
    batch = tokenizer(["My order has not arrived."], return_tensors="pt")
    with torch.no_grad():
        expected = model(**batch).logits
    again = quantization.load_or_train(TINY, rows, folder=folder, max_steps=2)
    assert not again.trained and again.message == f"loaded from {folder}"
    with torch.no_grad():
        assert torch.equal(again.model(**batch).logits, expected)
    assert runs.saved_with(folder, quantization.qlora_settings(TINY, rows, max_steps=2))
    assert not runs.saved_with(folder, quantization.qlora_settings(TINY, rows, max_steps=2, seed=1))


@pytest.mark.parametrize("max_steps", [0, -5, 2.5])
def test_a_qlora_step_budget_that_is_not_a_positive_whole_number_is_an_error(tmp_path, max_steps):
    from course_lib import quantization

    # max_steps=0 used to become lesson 04's budget (300 steps on the tiny profile)
    rows = without_system_prompt(load_tickets(data_path("tickets", "train_curated.jsonl"))[:4])
    error = re.escape(f"max_steps must be a whole number of at least 1, not {max_steps!r}.")
    with pytest.raises(ValueError, match=error):
        quantization.qlora_settings(TINY, rows, max_steps=max_steps)
    with pytest.raises(ValueError, match=error):
        quantization.load_or_train(TINY, rows, folder=tmp_path / "adapter", max_steps=max_steps)
    assert quantization.qlora_settings(TINY, rows)["max_steps"] == TINY.max_steps["04"]


@pytest.mark.parametrize("stop_at", [0, -1])
def test_a_stop_step_that_is_not_a_positive_whole_number_is_an_error(tmp_path, stop_at):
    from course_lib import quantization

    rows = without_system_prompt(load_tickets(data_path("tickets", "train_curated.jsonl"))[:4])
    error = rf"stop_at must be a whole number of at least 1, not {stop_at}\..*stop_at=None"
    with pytest.raises(ValueError, match=error):
        quantization.load_or_train(TINY, rows, folder=tmp_path / "adapter", max_steps=2, stop_at=stop_at)
    assert not (tmp_path / "runs").exists(), "refused before anything was written"
