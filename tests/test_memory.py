"""The memory planner (lesson 05) and the LoRA parameter counts (lesson 04): shapes, estimates against
published figures and against autograd and measured CPU steps, the t4 profile's fit, the command line and forms."""

import importlib.util
import json
import tempfile
from dataclasses import replace

import pytest
import torch

from course_lib import memory
from course_lib.memory import (
    GIB,
    GPUS,
    LESSON_METHODS,
    PROJECTIONS,
    ModelShape,
    ModelShapeError,
    estimate_for_lesson,
    estimate_memory,
    known_models,
    load_shape_file,
    lora_trainable_parameters,
    measure_peak_memory,
    measure_saved_activations,
    model_shape,
    quantized_bytes,
)
from course_lib.memory import __main__ as memory_cli
from course_lib.models import load_local_model
from course_lib.paths import data_path
from course_lib.profiles import PROFILES

from repo_files import ROOT

# Parameter counts the model cards publish.
PUBLISHED = {
    "SmolLM2-135M": 134.5e6,
    "SmolLM2-360M": 361.8e6,
    "SmolLM2-1.7B": 1.71e9,
    "Qwen2.5-0.5B": 494e6,
    "Qwen2.5-1.5B": 1.54e9,
    "Qwen2.5-7B": 7.62e9,
    "Llama-3.1-8B": 8.03e9,
}


# ---------------------------------------------------------------------------------------------------------
# shapes and parameter counts


def test_every_real_shape_is_shipped():
    assert set(known_models()) == set(PUBLISHED) | {"tiny-chat"}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_counts_match_the_published_counts(name):
    assert model_shape(name).parameters == pytest.approx(PUBLISHED[name], rel=0.01)


def test_parameter_count_by_hand():
    # SmolLM2-135M: embeddings (tied with the output layer); per block q and o 576x576, k and v 576x192
    # (3 kv heads of 64), gate, up, down 576x1536, two norms; the final norm.
    per_block = 2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536 + 2 * 576
    assert model_shape("SmolLM2-135M").parameters == 49152 * 576 + 30 * per_block + 576 == 134_515_008
    # Qwen2.5-7B: q, k, v biases, and an output layer of its own
    qwen = model_shape("Qwen2.5-7B")
    per_block = 3584 * 3584 * 2 + 2 * 3584 * 512 + 3 * 3584 * 18944 + (3584 + 512 + 512) + 2 * 3584
    assert qwen.parameters == 2 * 152064 * 3584 + 28 * per_block + 3584 == 7_615_616_512


def test_shapes_reproduce_the_real_configs():
    assert all(model_shape(name).tie_word_embeddings for name in ("SmolLM2-135M", "SmolLM2-360M", "SmolLM2-1.7B",
                                                                 "Qwen2.5-0.5B", "Qwen2.5-1.5B"))
    assert not model_shape("Qwen2.5-7B").tie_word_embeddings and not model_shape("Llama-3.1-8B").tie_word_embeddings
    assert model_shape("Qwen2.5-0.5B").biases == ("q_proj", "k_proj", "v_proj")
    assert model_shape("SmolLM2-360M").biases == model_shape("Llama-3.1-8B").biases == ()
    llama = model_shape("Llama-3.1-8B")
    assert (llama.num_heads, llama.num_kv_heads, llama.head_dim, llama.vocab_size) == (32, 8, 128, 128256)
    # every profile's model resolves through its Hub id or path
    assert model_shape(PROFILES["t4"].model).name == "SmolLM2-360M"
    assert model_shape(PROFILES["large"].model).name == "Qwen2.5-1.5B"
    assert model_shape(PROFILES["tiny"].model).name == "tiny-chat"


def test_tiny_shape_matches_the_shipped_tiny_model():
    model, _ = load_local_model(data_path("models", "tiny-chat"))
    shape = model_shape("tiny-chat")
    assert shape.parameters == sum(p.numel() for p in model.parameters())
    assert ModelShape.from_config(model.config, name="tiny-chat") == shape
    shipped = json.loads(data_path("models", "tiny-chat", "config.json").read_text())
    copied = json.loads((memory.SHAPES_DIR / "tiny-chat.json").read_text())["config"]
    assert all(shipped[key] == value for key, value in copied.items()), "tiny-chat.json has drifted from the model"


@pytest.mark.parametrize("name", ["SmolLM2-360M", "Qwen2.5-0.5B", "Qwen2.5-7B", "Llama-3.1-8B"])
def test_formulas_equal_models_built_from_the_shapes(name):
    """Parameter and LoRA counts against real transformers and peft models of the shape (on the meta device:
    no memory)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    shape = model_shape(name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(shape.to_config())
    assert type(model).__name__ == {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[shape.model_type]
    assert sum(p.numel() for p in model.parameters()) == shape.parameters
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=list(PROJECTIONS)))
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    assert trainable == lora_trainable_parameters(shape, 8, "all-linear")


def test_scaled_shapes_and_other_architectures_build_to_the_same_count():
    from transformers import AutoModelForCausalLM, MistralConfig, Qwen3Config

    for name in ("SmolLM2-135M", "Qwen2.5-0.5B"):
        shape = replace(model_shape(name).scaled(2), vocab_size=1000)  # real blocks, fewer of them, a small vocabulary
        model = AutoModelForCausalLM.from_config(shape.to_config())  # a real, randomly initialised model
        assert sum(p.numel() for p in model.parameters()) == shape.parameters
    qwen3 = Qwen3Config(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4,
                        num_key_value_heads=2, head_dim=96, vocab_size=1000, tie_word_embeddings=False)
    shape = ModelShape.from_config(qwen3)
    assert shape.qk_norm and shape.head_dim == 96
    assert sum(p.numel() for p in AutoModelForCausalLM.from_config(qwen3).parameters()) == shape.parameters
    mistral = MistralConfig(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=8,
                            num_key_value_heads=2, vocab_size=1000)
    shape = ModelShape.from_config(mistral)
    assert sum(p.numel() for p in AutoModelForCausalLM.from_config(mistral).parameters()) == shape.parameters


def test_lora_trainable_parameters_by_hand():
    # SmolLM2-360M, rank 16, attention only: 32 blocks x 16 x ((960+960) + (960+320) + (960+320) + (960+960))
    assert lora_trainable_parameters("SmolLM2-360M", rank=16, targets="attention") == 32 * 16 * 6400 == 3_276_800
    # all linear layers add gate, up, down: 3 x (960 + 2560)
    assert lora_trainable_parameters("SmolLM2-360M", rank=16, targets="all-linear") == 32 * 16 * (6400 + 3 * 3520)
    assert lora_trainable_parameters("SmolLM2-360M", rank=4, targets=["q_proj", "v_proj"]) == 32 * 4 * (1920 + 1280)
    with pytest.raises(ValueError, match="all-linear"):
        lora_trainable_parameters("SmolLM2-360M", rank=4, targets=["q_proj", "qkv"])
    with pytest.raises(ValueError, match="rank"):
        lora_trainable_parameters("SmolLM2-360M", rank=0)


def test_configs_and_dicts_are_accepted():
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=960, intermediate_size=2560, num_hidden_layers=32, num_attention_heads=15,
                         num_key_value_heads=5, vocab_size=49152, tie_word_embeddings=True)
    by_config = estimate_memory(config, method="qlora")
    by_name = estimate_memory("SmolLM2-360M", method="qlora")
    assert by_config.parts() == by_name.parts()
    as_dict = json.loads((memory.SHAPES_DIR / "Qwen2.5-0.5B.json").read_text())["config"]
    assert model_shape(as_dict).parameters == model_shape("Qwen2.5-0.5B").parameters
    with pytest.raises(ModelShapeError, match="gpt2.*not supported"):
        model_shape({"model_type": "gpt2", "hidden_size": 768})


def test_bad_shape_files_name_the_file_the_line_and_the_field(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "name": "x",\n  "config": {"model_type": "llama",,}\n}\n')
    with pytest.raises(ModelShapeError, match=r"broken\.json, line 3: not valid JSON"):
        load_shape_file(broken)
    missing = tmp_path / "missing.json"
    config = dict(json.loads((memory.SHAPES_DIR / "SmolLM2-135M.json").read_text())["config"])
    del config["intermediate_size"]
    missing.write_text(json.dumps({"name": "x", "config": config}))
    with pytest.raises(ModelShapeError, match=r"missing\.json: field 'intermediate_size' is missing"):
        load_shape_file(missing)
    config.update(intermediate_size=-5)
    missing.write_text(json.dumps({"name": "x", "config": config}))
    with pytest.raises(ModelShapeError, match="'intermediate_size' must be a positive whole number"):
        load_shape_file(missing)


# ---------------------------------------------------------------------------------------------------------
# published figures


def test_nf4_storage_by_hand():
    n = 64 * 256 * 10  # 10 groups of 256 blocks of 64 values
    # 4 bits a value; 8-bit absmax per block, an fp32 scale per 256 blocks and an fp32 offset
    assert quantized_bytes(n, double_quant=True) == n // 2 + 2560 + 10 * 4 + 4
    assert quantized_bytes(n, double_quant=False) == n // 2 + 2560 * 4  # fp32 absmax: 0.5 bit a value
    assert 8 * quantized_bytes(n, double_quant=True) / n == pytest.approx(4.127, abs=0.001)  # bits per value


def test_qlora_weights_of_a_7b_model_take_about_5_gb():
    """QLoRA paper (Dettmers et al. 2023): a 4-bit 7B model (Guanaco 7B) takes about 5 GB."""
    estimate = estimate_memory("Qwen2.5-7B", method="qlora")
    projections = 28 * 233_046_016  # stored in NF4
    by_hand = projections * (0.5 + (1 + 4 / 256) / 64) + (7_615_616_512 - projections) * 2  # the rest in bf16
    assert estimate.weights == pytest.approx(by_hand, rel=1e-4)
    assert estimate.weights / 1e9 == pytest.approx(5.0, rel=0.15)
    assert estimate.weights < 0.37 * estimate_memory("Qwen2.5-7B", method="lora").weights  # 16-bit: 15.2 GB


def test_mixed_precision_adamw_full_finetuning_takes_16_to_18_bytes_per_parameter():
    estimate = estimate_memory("SmolLM2-360M", method="full", dtype="bfloat16", optimizer="adamw")
    shape = model_shape("SmolLM2-360M")
    matmul_weights = shape.quantizable_parameters + shape.embedding_parameters  # the tied embedding is the lm_head
    # fp32 weights 4 + fp32 gradients 4 + AdamW moments 8, and autocast's 2-byte copies of the matmul weights
    assert estimate.weights == 4 * shape.parameters + 2 * matmul_weights
    assert estimate.gradients == 4 * shape.parameters and estimate.optimizer_state == 8 * shape.parameters
    assert 16 <= estimate.state_bytes_per_parameter() <= 18
    assert 16 <= estimate_memory("Qwen2.5-7B", method="full").state_bytes_per_parameter() <= 18
    # everything in bf16 (no master weights): 2 + 2 + 2 x 2 bytes
    pure = estimate_memory("SmolLM2-360M", method="full", dtype="bfloat16", mixed_precision=False)
    assert pure.state_bytes_per_parameter() == 8
    assert estimate_memory("SmolLM2-360M", method="full", dtype="float32").state_bytes_per_parameter() == 16


def test_the_peak_is_the_larger_of_the_backward_pass_and_the_optimizer_step():
    # LoRA: hardly any gradients, so the peak is at the start of the backward pass, with every activation saved
    lora = estimate_memory("SmolLM2-360M", method="lora", seq_len=512, batch_size=8)
    assert lora.peak_phase == "backward pass"
    assert lora.allocated == lora.weights + lora.optimizer_state + lora.adapters + lora.activations
    assert lora.total == sum(lora.parts().values()) - lora.gradients
    # full fine-tuning of a 7B model on one short sequence: the optimiser step holds every fp32 gradient and
    # AdamW's scratch copy of a moment (4 bytes each), while the 16-bit copies and activations are gone
    full = estimate_memory("Qwen2.5-7B", method="full", seq_len=128, batch_size=1)
    n = full.parameters
    assert full.peak_phase == "optimizer step" and full.optimizer_scratch == 4 * n
    assert full.allocated == 4 * n + 8 * n + 4 * n + 4 * n  # weights, moments, gradients, scratch: 20 bytes each
    assert "optimizer update scratch" in full.table() and "freed before the step" in full.table()


def test_settings_move_the_parts_they_should():
    base = dict(model="SmolLM2-360M", seq_len=1024, batch_size=4)
    lora = estimate_memory(**base, method="lora")
    assert estimate_memory(**base, method="qlora").weights < lora.weights / 2
    assert estimate_memory(**base, method="lora", gradient_checkpointing=False).activations > 3 * lora.activations
    eight_bit = estimate_memory(**base, method="full", optimizer="adamw_8bit")
    assert eight_bit.optimizer_state == pytest.approx(estimate_memory(**base, method="full").optimizer_state / 4,
                                                      rel=0.02)
    assert estimate_memory(**base, method="full", optimizer="sgd").optimizer_state == 0
    eager = estimate_memory(**base, method="lora", attention="eager", gradient_checkpointing=False)
    sdpa = estimate_memory(**base, method="lora", gradient_checkpointing=False)
    assert eager.activations > sdpa.activations  # eager keeps the seq_len x seq_len attention matrix
    dpo = estimate_memory(**base, method="lora", sequences_per_example=2)
    assert dpo.tokens == 2 * lora.tokens and dpo.activations > 1.9 * lora.activations


def test_prompt_tuning_trains_the_soft_prompt_alone_and_lengthens_every_sequence():
    """Lesson 04: a soft prompt of n tokens trains n x hidden parameters and adds n tokens to each sequence."""
    base = dict(model="SmolLM2-360M", seq_len=512, batch_size=4, dtype="float32", mixed_precision=False)
    prompt = estimate_memory(**base, method="prompt", virtual_tokens=20)
    lora = estimate_memory(**base, method="lora")
    shape = model_shape("SmolLM2-360M")
    assert prompt.trainable_parameters == 20 * shape.hidden_size and prompt.rank is None
    assert prompt.tokens == 4 * (512 + 20) and prompt.weights == lora.weights
    assert prompt.gradients == 4 * prompt.trainable_parameters and prompt.adapters == 4 * prompt.trainable_parameters
    assert prompt.optimizer_state == 8 * prompt.trainable_parameters  # AdamW's two fp32 moments
    longer = estimate_memory(**base, method="prompt", virtual_tokens=100)
    assert longer.activations > prompt.activations
    assert "soft prompt of 20 virtual tokens" in prompt.describe()
    assert estimate_memory(**base, method="lora", virtual_tokens=100).tokens == lora.tokens  # only prompt uses it
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="virtual_tokens"):
            estimate_memory(**base, method="prompt", virtual_tokens=bad)


# ---------------------------------------------------------------------------------------------------------
# activations against autograd, and whole steps against measured CPU peaks

TOKENS = (2, 40)  # batch x sequence: 80 tokens, a number no parameter dimension shares
SMALL = dict(model_type="llama", hidden_size=96, intermediate_size=160, num_heads=6, num_kv_heads=2, head_dim=16,
             vocab_size=300, tie_word_embeddings=True)


VIRTUAL_TOKENS = 7  # the soft prompt of the prompt-tuning cases: no parameter dimension is a multiple of it


def build(shape: ModelShape, method: str, dtype: torch.dtype, upcast: bool = False, attention: str = "sdpa"):
    """A small random model prepared for `method`, as lesson code prepares it."""
    from peft import LoraConfig, PromptTuningConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    torch.manual_seed(0)
    lora = LoraConfig(r=4, target_modules=list(PROJECTIONS), lora_dropout=0.0)
    if method == "prompt":  # lesson 04's prompt tuning: a soft prompt, everything else frozen
        model = AutoModelForCausalLM.from_config(shape.to_config(), dtype=dtype, attn_implementation=attention)
        return get_peft_model(model, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=VIRTUAL_TOKENS))
    if method != "qlora":
        model = AutoModelForCausalLM.from_config(shape.to_config(), dtype=dtype, attn_implementation=attention)
        return get_peft_model(model, lora) if method == "lora" else model
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=torch.bfloat16)
    with tempfile.TemporaryDirectory() as folder:
        AutoModelForCausalLM.from_config(shape.to_config(), dtype=torch.bfloat16).save_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quantization, dtype=torch.bfloat16,
                                                     attn_implementation=attention)
    if upcast:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(model, lora)


def batch(shape: ModelShape, padding: bool = True) -> dict:
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, shape.vocab_size, TOKENS, generator=generator)
    attention_mask = torch.ones_like(input_ids)
    if padding:
        attention_mask[0, -6:] = 0
    return dict(input_ids=input_ids, attention_mask=attention_mask,
                labels=input_ids.masked_fill(attention_mask == 0, -100))


CASES = {  # name: (method, parameter dtype, autocast, estimate settings)
    "full bf16": ("full", torch.bfloat16, None, dict(dtype="bfloat16", mixed_precision=False)),
    "full fp32 + autocast": ("full", torch.float32, "bfloat16", dict(dtype="bfloat16")),
    "full fp32": ("full", torch.float32, None, dict(dtype="float32")),
    "full bf16, eager": ("full", torch.bfloat16, None,
                         dict(dtype="bfloat16", mixed_precision=False, attention="eager")),
    "full bf16, no padding": ("full", torch.bfloat16, None,
                              dict(dtype="bfloat16", mixed_precision=False, padding=False)),
    "full bf16, one kv head": ("full", torch.bfloat16, None, dict(dtype="bfloat16", mixed_precision=False, kv_heads=1)),
    "lora bf16 + autocast": ("lora", torch.bfloat16, "bfloat16", dict(dtype="bfloat16")),
    "lora bf16": ("lora", torch.bfloat16, None, dict(dtype="bfloat16", mixed_precision=False)),
    "lora fp32": ("lora", torch.float32, None, dict(dtype="float32")),
    "qlora + autocast": ("qlora", torch.bfloat16, "bfloat16", dict(dtype="bfloat16")),
    "qlora, prepared + autocast": ("qlora-up", torch.bfloat16, "bfloat16",
                                   dict(dtype="bfloat16", upcast_unquantized=True)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_saved_activations_match_autograd(case):
    """Per block, the count equals byte for byte what autograd saves in a real block; so do the rest and the
    16-bit weight copies autocast keeps for the backward pass."""
    method, dtype, autocast, settings = CASES[case]
    settings = dict(settings)
    kv_heads = settings.pop("kv_heads", SMALL["num_kv_heads"])
    saved, estimates = {}, {}
    for layers in (2, 4):
        shape = ModelShape(name="small", num_layers=layers, **{**SMALL, "num_kv_heads": kv_heads})
        model = build(shape, method.split("-")[0], dtype, upcast=method.endswith("-up"),
                      attention=settings.get("attention", "sdpa"))
        model.train()
        saved[layers] = measure_saved_activations(model, autocast_dtype=autocast,
                                                  **batch(shape, settings.get("padding", True)))
        estimates[layers] = estimate_memory(shape, method=method.split("-")[0], seq_len=TOKENS[1], batch_size=TOKENS[0],
                                            rank=4, **settings)
    tokens = TOKENS[0] * TOKENS[1]
    per_layer = estimates[2].saved_per_token_per_layer
    assert (saved[4]["activations"] - saved[2]["activations"]) / 2 / tokens == per_layer
    outside = saved[2]["activations"] / tokens - 2 * per_layer
    expected = estimates[2].saved_per_token_outside_layers
    residual_bytes = 4 if dtype == torch.float32 or method == "qlora-up" else 2
    expected += 2 * TOKENS[1] * SMALL["head_dim"] * residual_bytes / tokens  # the rotary tables, shared by the batch
    if method != "full":  # nothing before the first block needs a gradient: no token ids kept, no first-norm input
        expected -= 8 + 4 * SMALL["hidden_size"] + 4
    assert outside == pytest.approx(expected, abs=0.1)  # the 4-byte loss aside
    # q, k, v's 16-bit A, rank 4
    first_block_a = 3 * 2 * 4 * SMALL["hidden_size"] if autocast and method != "full" else 0
    assert saved[2]["weight_copies"] == estimates[2].weight_copies - first_block_a  # the first block's A needs none


STEP_CASES = [("full", True), ("full", False), ("lora", True), ("lora", False), ("qlora", True), ("qlora", False),
              ("prompt", True), ("prompt", False)]


@pytest.mark.parametrize(("method", "checkpointing"), STEP_CASES)
def test_estimate_is_within_5_percent_of_a_measured_cpu_training_step(method, checkpointing):
    """A real step (forward, backward, AdamW) of a small model on the CPU, its peak read from the profiler."""
    shape = ModelShape(name="small", num_layers=2, **{**SMALL, "vocab_size": 2000})
    dtype = torch.float32 if method == "full" else torch.bfloat16
    model = build(shape, method, dtype, upcast=method == "qlora")
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    inputs = batch(shape)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # the first step creates AdamW's moments
    held = sum(p.numel() * p.element_size() for p in model.parameters())
    held += sum(t.numel() * t.element_size() for state in optimizer.state.values() for t in state.values() if t.dim())
    for module in model.modules():  # 4-bit scales live beside the packed weights
        quant_state = getattr(getattr(module, "weight", None), "quant_state", None)
        if quant_state is not None:
            held += quant_state.absmax.numel() * quant_state.absmax.element_size()
    measured = held + measure_peak_memory(step, device="cpu")
    estimate = estimate_memory(shape, method=method, seq_len=TOKENS[1], batch_size=TOKENS[0], rank=4, dtype="bfloat16",
                               gradient_checkpointing=checkpointing, upcast_unquantized=method == "qlora",
                               virtual_tokens=VIRTUAL_TOKENS)
    assert measured / estimate.allocated == pytest.approx(1.0, abs=0.05)


# ---------------------------------------------------------------------------------------------------------
# GPUs and the t4 profile


def test_gpu_capacities_and_margins():
    assert GPUS["T4"].capacity == int(14.75 * GIB) and GPUS["T4"].nominal_gb == 16
    assert set(GPUS) == {"T4", "L4", "A100-40GB", "A100-80GB", "H100"}
    assert all(gpu.capacity_gib < gpu.nominal_gb for gpu in GPUS.values())
    estimate = estimate_memory("SmolLM2-360M", method="qlora")
    assert estimate.margin("T4") == pytest.approx(1 - estimate.total / (14.75 * GIB))
    assert estimate.fits("T4") and estimate.fits("T4", margin=0.5)
    huge = estimate_memory("Llama-3.1-8B", method="full", seq_len=2048, batch_size=1)
    assert not huge.fits("A100-80GB") and huge.margin("T4") < 0
    assert estimate.overhead == memory.CUDA_CONTEXT_BYTES + round(memory.ALLOCATOR_SLACK * estimate.allocated)
    assert estimate.total == estimate.allocated + estimate.overhead
    with pytest.raises(ValueError, match="Known GPUs: T4"):
        estimate.fits("V100")


@pytest.mark.parametrize("lesson", sorted(PROFILES["t4"].max_steps))
def test_t4_profile_fits_a_t4_with_20_percent_to_spare(lesson):
    profile = PROFILES["t4"]
    assert lesson in LESSON_METHODS, (f"lesson {lesson} trains: add its method to LESSON_METHODS in "
                                      "course_lib/memory/estimate.py")
    estimate = estimate_for_lesson(profile, lesson)
    assert (estimate.model, estimate.method, estimate.dtype) == ("SmolLM2-360M", LESSON_METHODS[lesson].method,
                                                                 "float16")
    assert (estimate.batch_size, estimate.seq_len, estimate.gradient_checkpointing) == (8, 512, True)
    assert estimate.tokens == 8 * 512 * LESSON_METHODS[lesson].sequences_per_example
    assert estimate.fits("T4", margin=0.20), f"lesson {lesson} on the t4 profile:\n{estimate}"



@pytest.mark.parametrize("lesson", sorted(PROFILES["large"].max_steps))
def test_large_profile_fits_the_smallest_gpu_it_is_picked_for(lesson):
    # auto_profile picks `large` for any bfloat16 GPU with 35 GB or more: the smallest such GPU is a 40 GB A100
    estimate = estimate_for_lesson(PROFILES["large"], lesson)
    assert estimate.fits("A100-40GB", margin=0.10), f"lesson {lesson} on the large profile:\n{estimate}"


@pytest.mark.parametrize("profile_name", ["t4", "large"])
def test_lesson_estimates_plan_the_precision_the_code_trains_in(profile_name):
    # the code (tests/test_training.py checks it on a CPU replay): autocast in the profile's 16 bits over float32
    # trainable weights; full fine-tuning holds the whole model in float32, QLoRA's non-4-bit weights are cast to
    # float32 by prepare_model_for_kbit_training
    profile = PROFILES[profile_name]
    full = estimate_for_lesson(profile, "03")
    assert full.mixed_precision and full.dtype == profile.dtype
    assert full.weights - full.weight_copies == 4 * full.parameters  # float32 master weights
    assert full.gradients == 4 * full.parameters and full.optimizer_state == 8 * full.parameters  # AdamW in float32
    qlora = estimate_for_lesson(profile, "05")
    assert qlora == estimate_memory(profile.model, method="qlora", seq_len=profile.max_length,
                                    batch_size=profile.batch_size, dtype=profile.dtype, gradient_checkpointing=True,
                                    rank=profile.lora_rank, upcast_unquantized=True)
    for lesson in ("04", "05", "06"):  # adapters, their gradients and AdamW's moments in float32
        adapters = estimate_for_lesson(profile, lesson)
        assert adapters.gradients == 4 * adapters.trainable_parameters


def test_a_prepared_4bit_model_keeps_its_other_weights_in_float32():
    # what estimate_for_lesson(..., "05") plans with upcast_unquantized=True, on the t4 profile's dtype
    from peft import prepare_model_for_kbit_training

    from course_lib import quantization

    t4_on_cpu = replace(PROFILES["t4"], model=PROFILES["tiny"].model, needs_cuda=False)
    model, _ = quantization.load_quantized(t4_on_cpu, bits=4)
    assert any(p.dtype == torch.float16 for p in model.parameters())
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    assert {p.dtype for p in model.parameters() if p.dtype.is_floating_point} == {torch.float32}

def test_tables_show_every_part_and_every_gpu():
    estimate = estimate_memory("SmolLM2-360M", method="qlora", seq_len=2048, batch_size=1)
    table, fits = estimate.table(), estimate.fit_table()
    for part in ("weights", "gradients", "optimizer state", "activations", "adapters", "overhead"):
        assert part in table
    total_row = next(line for line in table.splitlines() if line.startswith("total: the peak, in the backward pass"))
    assert total_row.split()[-1] == f"{estimate.total / GIB:.2f}"
    assert "1.12 GiB" in table  # the logits' share of the activations: 2048 tokens x 12 bytes x 49152 entries
    assert all(f"{name} (" in fits for name in GPUS) and fits.count(" yes") == len(GPUS)
    assert "no" in estimate_memory("Qwen2.5-7B", method="full", seq_len=2048, batch_size=1).fit_table().split()[-1]
    assert str(estimate) == f"{table}\n\n{fits}"


def test_bad_settings_say_what_is_allowed():
    with pytest.raises(ModelShapeError, match="Unknown model 'GPT-5'. Known names: Llama-3.1-8B, Qwen2.5-0.5B"):
        estimate_memory("GPT-5")
    with pytest.raises(ValueError, match="method='dora' is not one of 'full', 'lora', 'qlora'"):
        estimate_memory("SmolLM2-360M", method="dora")
    with pytest.raises(ValueError, match="optimizer='adam' is not one of 'adamw'"):
        estimate_memory("SmolLM2-360M", optimizer="adam")
    with pytest.raises(ValueError, match="dtype='fp16' is not one of"):
        estimate_memory("SmolLM2-360M", dtype="fp16")
    with pytest.raises(ValueError, match="batch_size must be a whole number of at least 1"):
        estimate_memory("SmolLM2-360M", batch_size=0)
    with pytest.raises(KeyError, match="training lessons: 03, 04, 05, 06"):
        estimate_for_lesson(PROFILES["t4"], "07")


# ---------------------------------------------------------------------------------------------------------
# command line, forms, plot, benchmark


def test_command_line_prints_the_breakdown_and_the_fit_table(capsys):
    argv = ["--model", "SmolLM2-360M", "--method", "qlora", "--seq-len", "2048", "--batch-size", "1"]
    assert memory_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.strip() == str(estimate_memory("SmolLM2-360M", method="qlora", seq_len=2048, batch_size=1))
    assert memory_cli.main(["--model", "Qwen/Qwen2.5-7B-Instruct", "--method", "full", "--optimizer", "adamw_8bit",
                            "--no-gradient-checkpointing", "--dtype", "float16", "--rank", "8", "--targets",
                            "attention"]) == 0
    out = capsys.readouterr().out
    assert "Qwen2.5-7B, full" in out and "adamw_8bit" in out and "gradient checkpointing off" in out
    assert memory_cli.main(["--model", "SmolLM2-360M", "--method", "prompt", "--virtual-tokens", "32"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == str(estimate_memory("SmolLM2-360M", method="prompt", virtual_tokens=32))
    assert "a soft prompt of 32 virtual tokens" in out


def test_command_line_unknown_model_lists_the_known_ones(capsys):
    assert memory_cli.main(["--model", "GPT-5", "--method", "qlora"]) == 2
    err = capsys.readouterr().err
    assert "Unknown model 'GPT-5'" in err and all(name in err for name in known_models())
    assert memory_cli.main(["--list"]) == 0
    assert "HuggingFaceTB/SmolLM2-360M-Instruct" in capsys.readouterr().out


def test_memory_form_redraws_on_every_change():
    from course_lib.memory.forms import memory_form

    form = memory_form(model="SmolLM2-360M", method="qlora", seq_len=512, batch_size=8, dtype="float16")
    assert form.text == str(estimate_memory("SmolLM2-360M", method="qlora", seq_len=512, batch_size=8, dtype="float16"))
    form.controls["method"].value = "full"
    form.controls["batch_size"].value = 2
    form.controls["gradient_checkpointing"].value = False
    expected = estimate_memory("SmolLM2-360M", method="full", seq_len=512, batch_size=2, dtype="float16",
                               gradient_checkpointing=False)
    assert form.text == str(expected) and form.estimate() == expected
    assert "weights" in form.report.value and form.report.value.startswith("<pre>")


def test_lora_explorer_shows_trainable_parameters_and_share():
    from course_lib.memory.forms import lora_explorer

    explorer = lora_explorer(model="SmolLM2-360M", rank=16, targets="attention")
    assert "trainable parameters: 3,276,800 = 0.906% of the model's 361,821,120" in explorer.text
    explorer.controls["targets"].value = "all-linear"
    explorer.controls["rank"].value = 8
    assert "trainable parameters: 4,341,760 = 1.200%" in explorer.text  # 32 x 8 x (6400 + 3 x 3520)
    explorer.controls["model"].value = "Llama-3.1-8B"
    assert f"{lora_trainable_parameters('Llama-3.1-8B', rank=8):,}" in explorer.text
    assert explorer.controls["rank"].min == 1 and explorer.controls["rank"].max == 256


def test_plot_breakdown_stacks_the_parts_and_draws_the_gpus(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    estimates = [estimate_memory("SmolLM2-360M", method=m, dtype="float16") for m in ("full", "lora", "qlora")]
    figure = memory.plot_breakdown(estimates, gpus=("T4", "L4"))
    ax = figure.axes[0]
    full_bar = [patch for patch in ax.patches if abs(patch.get_x() + patch.get_width() / 2) < 1e-9]
    solid = sum(patch.get_height() for patch in full_bar if patch.get_hatch() is None)
    hatched = sum(patch.get_height() for patch in full_bar if patch.get_hatch())
    assert solid == pytest.approx(estimates[0].total / GIB)  # the parts alive at the peak make up the peak
    assert hatched == pytest.approx(estimates[0].gradients / GIB)  # the gradients come after it
    gpu_lines = [line.get_ydata()[0] for line in ax.lines if len(line.get_xdata()) == 2 and line.get_xdata()[1] == 1]
    assert sorted(gpu_lines) == [14.75, 22.03]
    peak_marks = sorted(line.get_ydata()[0] for line in ax.lines if line.get_xdata()[1] != 1)
    assert peak_marks == pytest.approx(sorted(e.total / GIB for e in estimates))
    figure.savefig(tmp_path / "breakdown.png")
    assert (tmp_path / "breakdown.png").stat().st_size > 10_000


@pytest.mark.skipif(torch.cuda.is_available(), reason="measures on the GPU when there is one")
def test_benchmark_says_it_needs_a_gpu_and_exits_cleanly(capsys):
    spec = importlib.util.spec_from_file_location("memory_peak", ROOT / "benchmarks" / "memory_peak.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main([]) == 0
    assert "No CUDA GPU found" in capsys.readouterr().out


def test_every_shipped_model_orders_full_above_lora_above_qlora():
    for name in known_models():
        full, lora, qlora = (estimate_memory(name, method=m, seq_len=256, batch_size=1)
                             for m in ("full", "lora", "qlora"))
        assert full.total > lora.total > qlora.total, name
        assert full.trainable_parameters == full.parameters > lora.trainable_parameters == qlora.trainable_parameters
