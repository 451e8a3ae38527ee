"""Lesson 05b's exercise checks: merging a QLoRA adapter, QLoRA's weight memory, 8-bit optimiser state."""

from __future__ import annotations

import math
from collections.abc import Callable

from course_lib.exercise_checks.report import call, close, fail, import_bitsandbytes_quietly, number, passed

LORA_RANK, LORA_SCALING = 4, 2.0  # the adapter of the merge check: rank 4, alpha / r = 8 / 4


def nf4_layer_and_adapter(seed: int = 11):
    """A bitsandbytes `Linear4bit` (48 outputs, 64 inputs) holding random weights in NF4, and a LoRA pair for it.

    The full-precision weights it was quantised from are not returned: a learner's `merge_qlora` sees only the
    4-bit layer, as after `load_in_4bit`, so merging into what the layer computes with is the only merge it can do.
    """
    import_bitsandbytes_quietly()
    import bitsandbytes as bnb
    import torch

    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(48, 64, generator=generator) * 0.02
    layer = bnb.nn.Linear4bit(64, 48, bias=False, quant_type="nf4", compute_dtype=torch.float32)
    layer.weight = bnb.nn.Params4bit(weight, requires_grad=False, quant_type="nf4")
    layer = layer.to("cpu")  # quantises the weights
    layer.support_avx512bf16_for_cpu = False  # compute as on every CPU (course_lib.quantization.load_quantized)
    lora_a = torch.randn(LORA_RANK, 64, generator=generator) * 0.1
    lora_b = torch.randn(48, LORA_RANK, generator=generator) * 0.1
    return layer, lora_a, lora_b


def check_merge_qlora(merge_qlora: Callable) -> None:
    """Lesson 05b: `merge_qlora(layer, lora_a, lora_b, scaling)` merges into the dequantised 4-bit weights."""
    layer, lora_a, lora_b = nf4_layer_and_adapter()
    import bitsandbytes.functional as bnbf
    import torch

    from course_lib.claims import float32_tolerance

    exercise = "merge_qlora"
    dequantised = bnbf.dequantize_4bit(layer.weight.data, layer.weight.quant_state)
    update = lora_b @ lora_a
    want = dequantised + LORA_SCALING * update
    got = call(exercise, merge_qlora, layer, lora_a.clone(), lora_b.clone(), LORA_SCALING,
               hint="dequantise the layer's weights with bitsandbytes.functional.dequantize_4bit(layer.weight.data, "
                    "layer.weight.quant_state), then add scaling * lora_b @ lora_a.")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        fail(exercise, f"expected a tensor of shape {tuple(want.shape)} (out_features, in_features), got "
                       f"{getattr(got, 'shape', type(got).__name__)}",
             "layer.weight holds packed 4-bit codes, two per byte: dequantise it first; the update is lora_b @ lora_a, "
             "(out, r) times (r, in).")
    got = got.detach().float()
    if close(got, dequantised):
        fail(exercise, "your merged weights are the dequantised weights alone", "add the adapter's update too.")
    if close(got, dequantised + update):
        fail(exercise, "the update is added without its scale", f"multiply lora_b @ lora_a by scaling "
                                                                f"({LORA_SCALING}, alpha / r).")
    if not close(got, want, atol=1e-6):
        fail(exercise, f"your merged weights differ from dequantised + scaling * B A by up to "
                       f"{(got - want).abs().max():.3g}",
             "dequantize_4bit(layer.weight.data, layer.weight.quant_state) + scaling * lora_b @ lora_a.")
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(12))
    with torch.no_grad():
        trained = layer(x) + LORA_SCALING * (x @ lora_a.T) @ lora_b.T  # the 4-bit layer with its adapter beside it
    gap = (x @ got.T - trained).abs().max().item()
    if gap > float32_tolerance(trained, terms=64 + LORA_RANK):
        fail(exercise, f"the merged layer's outputs differ from the 4-bit layer's with its adapter by {gap:.3g}",
             "merge into the dequantised weights, in float32.")
    return passed(exercise, f"one matrix gives the 4-bit layer's outputs with its adapter, up to {gap:.1e}")


def expected_qlora_weight_bytes(shape) -> int:
    """The planner's QLoRA weight bytes of `shape`, every unquantised parameter in 16 bits."""
    from course_lib.memory import estimate_memory

    return estimate_memory(shape, method="qlora", dtype="float16", upcast_unquantized=False).weights


def check_qlora_weight_bytes(qlora_weight_bytes: Callable) -> None:
    """Lesson 05b: `qlora_weight_bytes(shape, dtype_bytes)` matches the memory planner's QLoRA weights."""
    from course_lib.memory import model_shape

    exercise = "qlora_weight_bytes"
    for name in ("Qwen2.5-7B", "SmolLM2-360M"):
        shape = model_shape(name)
        want = expected_qlora_weight_bytes(shape)
        got = number(exercise, call(exercise, qlora_weight_bytes, shape, 2,
                                    hint="4-bit codes and their double-quantised scales for the seven projections of "
                                         "every block; every other parameter at dtype_bytes each."),
                     "a number of bytes")
        if abs(got - want) <= 1e-3 * want:
            continue
        projections = shape.num_layers * shape.linear_weights_per_layer
        others = shape.parameters - projections  # embeddings, norms, biases (and an untied lm_head), in float16
        wrong = {
            "the codes alone, without their block scales": projections / 2 + 2 * others,
            "scales without double quantisation (a 32-bit absmax per 64 weights)":
                projections * (0.5 + 4 / 64) + 2 * others,
            "every parameter in 4 bits, embeddings and norms included": shape.parameters * (0.5 + 1 / 64),
            "every parameter in 16 bits, as LoRA keeps them": 2 * shape.parameters,
        }
        for mistake, value in wrong.items():
            if abs(got - value) <= 2e-3 * value:
                fail(exercise, f"{name}: {got / 2**30:.3f} GiB is {mistake}; the planner counts {want / 2**30:.3f} GiB",
                     "only the projections are quantised: 0.5 byte a weight, plus an 8-bit absmax per 64 weights and "
                     "a 32-bit scale per 256 absmax values; the rest stays at dtype_bytes.")
        fail(exercise, f"{name}: you count {got / 2**30:.3f} GiB of weights, the planner {want / 2**30:.3f} GiB",
             "shape.num_layers * the weights of shape.linears() are quantised; shape.parameters minus them are not.")
    return passed(exercise, "the QLoRA weights of Qwen2.5-7B and SmolLM2-360M match the memory planner's")


def measured_adamw8bit_bytes(numel: int) -> int:
    """Bytes of state bitsandbytes' AdamW8bit keeps for one tensor of `numel` values, after one step."""
    import_bitsandbytes_quietly()
    import bitsandbytes as bnb
    import torch

    parameter = torch.nn.Parameter(torch.zeros(numel))
    parameter.grad = torch.ones(numel)
    optimizer = bnb.optim.AdamW8bit([parameter])
    optimizer.step()
    return sum(t.nbytes for t in optimizer.state[parameter].values() if torch.is_tensor(t))


def check_adamw8bit_state_bytes(adamw8bit_state_bytes: Callable) -> None:
    """Lesson 05b: `adamw8bit_state_bytes(numel)` matches what bitsandbytes' AdamW8bit stores."""
    exercise = "adamw8bit_state_bytes"
    for numel in (100_003, 4_096, 1_000):
        want = measured_adamw8bit_bytes(numel)
        got = number(exercise, call(exercise, adamw8bit_state_bytes, numel,
                                    hint="two moments of 1 byte a value, each with a 32-bit absmax per block of 256 "
                                         "values and a 256-entry float32 code book; small tensors keep 32-bit state."),
                     "a number of bytes")
        if got == want:
            continue
        if numel < 4096 and got < want:
            fail(exercise, f"a tensor of {numel} values: you count {got:,.0f} bytes, bitsandbytes stores {want:,} "
                           "(8 bytes a value)",
                 "bitsandbytes keeps two 32-bit moments for tensors under 4,096 values (its min_8bit_size).")
        if numel >= 4096 and abs(got - 2 * numel) < 0.01 * numel:
            fail(exercise, f"a tensor of {numel} values: you count {got:,.0f} bytes, bitsandbytes stores {want:,}",
                 "each moment also keeps a float32 absmax per block of 256 values (rounded up) and its 256-entry "
                 "float32 code book.")
        fail(exercise, f"a tensor of {numel} values: you count {got:,.0f} bytes, bitsandbytes stores {want:,}",
             f"2 x ({numel} + 4 x ceil({numel} / 256) + 4 x 256) for 4,096 values or more; 8 x numel below.")
    blocks = math.ceil(100_003 / 256)
    return passed(exercise, f"2 x (100,003 + 4 x {blocks} + 1,024) bytes for 100,003 values, 8 bytes a value under "
                            "4,096")
