"""Lesson 05a's exercise checks: NF4 by hand, against bitsandbytes."""

from __future__ import annotations

from collections.abc import Callable

from course_lib.exercise_checks.report import call, close, fail, import_bitsandbytes_quietly, number, passed


def nf4_levels():
    import_bitsandbytes_quietly()
    import bitsandbytes.functional as bnbf

    return bnbf.get_4bit_type("nf4", device="cpu")


def nf4_weights(seed: int = 5):
    import torch

    return torch.randn(32, 128, generator=torch.Generator().manual_seed(seed)) * 0.02


def bnb_codes(packed):
    import torch

    return torch.stack([packed.flatten() >> 4, packed.flatten() & 0x0F], dim=1).flatten()


def check_quantize_nf4(quantize_nf4: Callable) -> None:
    """Lesson 05a: `quantize_nf4(w, levels, block)` gives bitsandbytes' NF4 codes and block absmax."""
    import_bitsandbytes_quietly()
    import bitsandbytes.functional as bnbf
    import torch

    exercise = "quantize_nf4"
    levels, w, block = nf4_levels(), nf4_weights(), 64
    packed, state = bnbf.quantize_4bit(w, blocksize=block, quant_type="nf4")
    got = call(exercise, quantize_nf4, w.clone(), levels, block,
               hint="split w into blocks of `block` weights, divide each block by its largest absolute value (absmax), "
                    "and give every weight the index of the nearest level.")
    try:
        codes, absmax = got
    except (TypeError, ValueError):
        fail(exercise, f"expected (codes, absmax), got {type(got).__name__}", "return a pair of tensors.")
    absmax = torch.as_tensor(absmax).flatten()
    if absmax.numel() != state.absmax.numel():
        fail(exercise, f"expected {state.absmax.numel()} block scales (one per {block} weights), got {absmax.numel()}",
             "reshape w to (-1, block) and take .abs().amax(dim=1).")
    if not close(absmax, state.absmax):
        fail(exercise, "your block scales differ from bitsandbytes' absmax",
             "each block's scale is its largest absolute weight, not its mean or its largest signed weight.")
    codes = torch.as_tensor(codes).flatten().long()
    want = bnb_codes(packed).long()
    if codes.numel() != want.numel():
        fail(exercise, f"expected one code per weight ({want.numel()}), got {codes.numel()}",
             "return codes for every weight.")
    wrong = (codes != want).nonzero().flatten().tolist()
    if len(wrong) > 2:  # a weight exactly at a midpoint may round either way
        example = wrong[0]
        scaled = (w.flatten()[example] / state.absmax[example // block]).item()
        fail(exercise, f"{len(wrong)} of {want.numel()} codes differ from bitsandbytes'; weight {example} scales to "
                       f"{scaled:+.4f}, whose nearest level is {int(want[example])} "
                       f"({levels[int(want[example])]:+.4f}), you gave {int(codes[example])}",
             "scale by the block's absmax first, then pick the nearest of the 16 levels "
             "(torch.bucketize against the midpoints between levels does that).")
    return passed(exercise, f"{want.numel()} codes and {absmax.numel()} block scales match bitsandbytes")


def check_dequantize_nf4(dequantize_nf4: Callable) -> None:
    """Lesson 05a: `dequantize_nf4(codes, absmax, levels, shape)` matches bitsandbytes' dequantize_4bit."""
    import_bitsandbytes_quietly()
    import bitsandbytes.functional as bnbf
    import torch

    exercise = "dequantize_nf4"
    levels, w = nf4_levels(), nf4_weights(seed=6)
    packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4")
    codes = bnb_codes(packed).to(torch.uint8).reshape(-1, 64)
    want = bnbf.dequantize_4bit(packed, state, quant_type="nf4")
    got = call(exercise, dequantize_nf4, codes.clone(), state.absmax.clone(), levels, tuple(w.shape),
               hint="look each code's level up (levels[codes.long()]), multiply by its block's absmax, reshape.")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(w.shape):
        fail(exercise, f"expected a tensor of shape {tuple(w.shape)}, got {getattr(got, 'shape', type(got).__name__)}",
             "reshape the result to `shape`.")
    if not close(got, want, atol=1e-6):
        if close(got, levels[codes.long()].reshape(w.shape), atol=1e-6):
            fail(exercise, "your weights are the levels themselves, between -1 and 1",
                 "multiply each block's levels by that block's absmax.")
        fail(exercise, f"your weights differ from bitsandbytes' by up to {(got - want).abs().max():.3g}",
             "levels[codes.long()] * absmax.unsqueeze(1), then .reshape(shape).")
    return passed(exercise, "the dequantised weights match bitsandbytes' dequantize_4bit")


def check_bits_per_weight(bits_per_weight: Callable) -> None:
    """Lesson 05a: `bits_per_weight(block, double_quantised, nested_block)` matches what bitsandbytes stores."""
    import_bitsandbytes_quietly()
    import bitsandbytes.functional as bnbf
    import torch

    exercise = "bits_per_weight"
    w = torch.randn(256, 1024, generator=torch.Generator().manual_seed(7))
    for double in (False, True):
        packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=double)
        stored = packed.nbytes + state.absmax.nbytes
        if double:
            stored += state.state2.absmax.nbytes + state.offset.nbytes
        measured = 8 * stored / w.numel()
        got = call(exercise, bits_per_weight, 64, double, 256,
                   hint="4 bits per code, plus each block's scale spread over its weights: a 32-bit scale per 64 "
                        "weights; double quantised, an 8-bit scale per 64 weights plus a 32-bit one per 256 scales.")
        got = number(exercise, got, "a number of bits")
        if abs(got - measured) > 0.01:
            kind = "double quantised" if double else "single quantised"
            fail(exercise, f"{kind}, you count {got:.4f} bits per weight, bitsandbytes stores {measured:.4f}",
                 "4 + 32 / block" + (" becomes 4 + 8 / block + 32 / (block * nested_block)" if double else "") + ".")
    return passed(exercise, "4.5 and about 4.13 bits per weight, as bitsandbytes stores them")

