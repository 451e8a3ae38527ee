"""What this machine has: GPU, its memory and bfloat16 support, CPU cores and RAM. Introduced in lesson 00."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Hardware:
    cuda: bool  # a CUDA GPU is usable by torch
    gpu_name: str | None  # e.g. "Tesla T4"
    gpu_memory_gb: float | None  # total memory of GPU 0, in GB (10**9 bytes)
    bf16: bool  # native bfloat16: compute capability 8.0 or newer (T4 is 7.5)
    cpu_count: int  # logical CPU cores
    ram_gb: float | None  # total system memory, in GB

    @classmethod
    def detect(cls) -> Hardware:
        """Read the hardware of this machine through torch and the operating system."""
        import torch

        cuda = torch.cuda.is_available()
        name = memory = None
        bf16 = False
        if cuda:
            props = torch.cuda.get_device_properties(0)
            name, memory = props.name, props.total_memory / 1e9
            # torch.cuda.is_bf16_supported() also says yes for emulated bf16 on a T4; ask for the real thing.
            bf16 = torch.cuda.get_device_capability(0) >= (8, 0)
        try:
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
        except (ValueError, OSError, AttributeError):
            ram = None
        return cls(cuda=cuda, gpu_name=name, gpu_memory_gb=memory, bf16=bf16, cpu_count=os.cpu_count() or 1, ram_gb=ram)

    def describe(self) -> str:
        """One line, e.g. 'cuda: Tesla T4, 15.8 GB' or 'cpu: 2 cores, 24 GB RAM'."""
        ram = f", {self.ram_gb:.0f} GB RAM" if self.ram_gb else ""
        if self.cuda:
            return f"cuda: {self.gpu_name}, {self.gpu_memory_gb:.1f} GB (CPU: {self.cpu_count} cores{ram})"
        return f"cpu: {self.cpu_count} cores{ram}"
