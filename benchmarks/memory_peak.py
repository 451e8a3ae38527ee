"""Peak GPU memory of real training steps against the memory planner: `python benchmarks/memory_peak.py`.

For randomly initialised models of real shapes (default: SmolLM2-135M, SmolLM2-360M, Qwen2.5-0.5B) it runs a few
training steps (forward, backward, optimiser step) of
- full fine-tuning: fp32 master weights trained under autocast, torch AdamW (the GPU profiles' recipe:
  `course_lib.training.upcast_trainable`, called by `sft_trainer` and the DPO trainer);
- LoRA: the base in 16 bits, peft LoRA rank 16 on all linear layers, autocast, torch AdamW;
- QLoRA: the base loaded in NF4 with double quantisation (transformers' BitsAndBytesConfig), peft's
  prepare_model_for_kbit_training, then LoRA as above;
each with and without gradient checkpointing, on padded batches, and prints torch.cuda.max_memory_allocated next
to `course_lib.memory.estimate_memory` for the same settings. torch does not count the CUDA context or the
caching allocator's unused reserve, so the measured peak is compared with the estimate minus its overhead
(`MemoryEstimate.allocated`); the reserved peak is printed too. Target: measured within 15% of estimated.

Options: --models SmolLM2-135M Qwen2.5-0.5B --methods full lora qlora --seq-len 512 --batch-size 4 --steps 3.
Without a CUDA GPU it says so and exits with status 0: there is nothing to measure.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
from collections.abc import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random-initialised models only: nothing is downloaded

from course_lib.memory import GIB, PROJECTIONS, MemoryEstimate, estimate_memory, model_shape  # noqa: E402

TARGET = 0.15  # measured within 15% of estimated
RANK = 16


def build_model(shape, method: str, dtype, device: str):
    """A randomly initialised model of `shape`, prepared for `method` as the lessons prepare it."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    config = shape.to_config()
    lora = LoraConfig(r=RANK, lora_alpha=2 * RANK, target_modules=list(PROJECTIONS), lora_dropout=0.0,
                      task_type="CAUSAL_LM")
    if method == "full":  # fp32 master weights; autocast computes in 16 bits
        with torch.device(device):
            return AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
    if method == "lora":
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa")
        return get_peft_model(model, lora)
    quantization = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                      bnb_4bit_compute_dtype=dtype)
    with tempfile.TemporaryDirectory() as folder:  # bitsandbytes quantises while loading: save, then load in 4 bits
        AutoModelForCausalLM.from_config(config, dtype=dtype).save_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=quantization, dtype=dtype,
                                                     device_map={"": device}, attn_implementation="sdpa")
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return get_peft_model(model, lora)


def measure(shape, method: str, *, seq_len: int, batch_size: int, checkpointing: bool, steps: int, dtype,
            device: str = "cuda", seed: int = 0) -> dict[str, int]:
    """Peak allocated and reserved bytes over `steps` training steps, and the bytes held before them."""
    import torch

    torch.manual_seed(seed)
    model = build_model(shape, method, dtype, device)
    if checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.train()  # from_pretrained returns a model in eval mode, where checkpointing is off
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    scaler = torch.amp.GradScaler(device, enabled=dtype == torch.float16)
    input_ids = torch.randint(0, shape.vocab_size, (batch_size, seq_len), device=device)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, -seq_len // 8:] = 0  # one padded row, as in a real batch
    labels = input_ids.masked_fill(attention_mask == 0, -100)

    def step():
        for _ in range(steps):
            with torch.autocast(device, dtype=dtype):
                loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

    torch.cuda.synchronize()
    held = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    return {"held": held, "peak": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["SmolLM2-135M", "SmolLM2-360M", "Qwen2.5-0.5B"])
    parser.add_argument("--methods", nargs="+", choices=["full", "lora", "qlora"], default=["full", "lora", "qlora"])
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3,
                        help="training steps per run (the first allocates AdamW's state)")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU found (torch.cuda.is_available() is False): this benchmark measures GPU memory, so there "
              "is nothing to measure here. Run it on a machine with an NVIDIA GPU, e.g. a Colab T4 runtime.")
        return 0
    capability = torch.cuda.get_device_capability()
    dtype = torch.bfloat16 if capability >= (8, 0) else torch.float16
    dtype_name = str(dtype).removeprefix("torch.")
    props = torch.cuda.get_device_properties(0)
    print(f"{props.name}, {props.total_memory / GIB:.2f} GiB, {dtype_name}; batch {args.batch_size} x {args.seq_len} "
          f"tokens, {args.steps} steps, LoRA rank {RANK} on all linear layers, padded batches")
    print("estimate = MemoryEstimate.allocated (the estimate without CUDA context and allocator reserve)")
    print(f"{'model':<14}{'method':<7}{'ckpt':<6}{'held GiB':>9}{'est. GiB':>9}{'peak GiB':>9}{'ratio':>7}"
          f"{'reserved':>10}  within")
    ratios = []
    for name in args.models:
        shape = model_shape(name)
        for method in args.methods:
            for checkpointing in (False, True):
                estimate: MemoryEstimate = estimate_memory(
                    shape, method=method, seq_len=args.seq_len, batch_size=args.batch_size, optimizer="adamw",
                    gradient_checkpointing=checkpointing, dtype=dtype_name, mixed_precision=True, rank=RANK,
                    targets="all-linear", upcast_unquantized=method == "qlora", padding=True,
                )
                try:
                    got = measure(shape, method, seq_len=args.seq_len, batch_size=args.batch_size,
                                  checkpointing=checkpointing, steps=args.steps, dtype=dtype)
                except torch.cuda.OutOfMemoryError:
                    got = None
                gc.collect()  # the run's model and optimiser are gone: give their memory back before the next run
                torch.cuda.empty_cache()
                if got is None:
                    print(f"{shape.name:<14}{method:<7}{'on' if checkpointing else 'off':<6}  out of memory "
                          f"(estimated {estimate.total / GIB:.2f} GiB with overhead)")
                    continue
                ratio = got["peak"] / estimate.allocated
                ratios.append(ratio)
                print(f"{shape.name:<14}{method:<7}{'on' if checkpointing else 'off':<6}{got['held'] / GIB:>9.2f}"
                      f"{estimate.allocated / GIB:>9.2f}{got['peak'] / GIB:>9.2f}{ratio:>7.2f}"
                      f"{got['reserved'] / GIB:>10.2f}"
                      f"  {'yes' if abs(ratio - 1) <= TARGET else 'NO'}")
    if ratios:
        inside = sum(abs(r - 1) <= TARGET for r in ratios)
        print(f"{inside} of {len(ratios)} runs within {TARGET:.0%}; "
              f"measured/estimated from {min(ratios):.2f} to {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
