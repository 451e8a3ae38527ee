"""Measured memory: what autograd saves for the backward pass, and the peak of a real training step."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def measure_saved_activations(model: Any, autocast_dtype: str | None = None, **inputs: Any) -> dict[str, int]:
    """Bytes autograd saves for the backward pass during one forward of `model(**inputs)`. Lesson 05.

    Works on any device, the CPU included. Returns "activations" and "weight_copies": saved 2-D tensors shaped
    like a parameter (autocast's 16-bit weight copies). Parameters themselves are not counted, and tensors that
    share memory are counted once. Pick a token count that differs from every parameter dimension.
    """
    import torch

    param_storages = {p.untyped_storage().data_ptr() for p in model.parameters()}
    param_shapes = {tuple(p.shape) for p in model.parameters()} | {tuple(p.shape)[::-1] for p in model.parameters()}
    seen: dict[int, tuple[int, bool]] = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in param_storages:
            is_copy = tensor.dim() == 2 and tuple(tensor.shape) in param_shapes
            seen[storage.data_ptr()] = (storage.nbytes(), is_copy)
        return tensor

    device = next(model.parameters()).device.type
    dtype = getattr(torch, autocast_dtype) if autocast_dtype else torch.bfloat16
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        with torch.autocast(device, dtype=dtype, enabled=autocast_dtype is not None):
            output = model(**inputs)
    del output
    return {
        "activations": sum(nbytes for nbytes, is_copy in seen.values() if not is_copy),
        "weight_copies": sum(nbytes for nbytes, is_copy in seen.values() if is_copy),
    }


def measure_peak_memory(step: Callable[[], Any], device: str = "cpu") -> int:
    """Peak bytes allocated above the start while `step()` runs, on a CUDA GPU or on the CPU. Lesson 05.

    On a GPU it reads PyTorch's allocator (torch.cuda.max_memory_allocated, which leaves out the CUDA context);
    on the CPU it replays the allocation and free events the PyTorch profiler records. Memory held before the
    call (weights, optimiser state) is not included: add it to compare with an estimate.
    """
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)
        start = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - start
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = [e for e in prof.profiler.kineto_results.events()
              if e.name() == "[memory]" and e.device_type().name == "CPU"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return peak

