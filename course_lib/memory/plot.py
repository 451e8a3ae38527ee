"""The memory breakdown as stacked bars, one per estimate, with GPU capacities as lines."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from course_lib.memory.estimate import GIB, GPUS, MemoryEstimate, gpu_named

PART_COLORS = {"weights": "#4c72b0", "gradients": "#dd8452", "optimizer_state": "#55a868", "activations": "#c44e52",
               "adapters": "#8172b3", "overhead": "#937860", "optimizer_scratch": "#ccb974"}


def _bar_segments(estimate: MemoryEstimate) -> list[tuple[str, float, bool]]:
    """(part, GiB, alive at the peak) from the bottom of the bar up: the peak's parts first, then the rest."""
    parts = estimate.parts()
    if estimate.peak_phase == "backward pass":
        alive = ["overhead", "weights", "adapters", "optimizer_state", "activations"]
        segments = [(part, parts[part], True) for part in alive] + [("gradients", parts["gradients"], False)]
    else:
        copies = estimate.weight_copies
        segments = [("overhead", parts["overhead"], True),
                    ("weights", parts["weights"] + parts["adapters"] - copies, True),
                    ("optimizer_state", parts["optimizer_state"], True), ("gradients", parts["gradients"], True),
                    ("optimizer_scratch", estimate.optimizer_scratch, True), ("weights", copies, False),
                    ("activations", parts["activations"], False)]
    return [(part, value / GIB, is_alive) for part, value, is_alive in segments]


def plot_breakdown(estimates: Sequence[MemoryEstimate], gpus: Sequence[str] = ("T4", "L4", "A100-40GB"),
                   ax: Any = None):
    """Stacked bars of estimates' parts (GiB), hatched where not alive at the peak, and GPU capacities. Lesson 05."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not estimates:
        raise ValueError("plot_breakdown needs at least one estimate, e.g. [estimate_memory('SmolLM2-360M')].")
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.8 * len(estimates) + 3.5, 4.5))
    else:
        fig = ax.figure
    labels = [f"{e.model}\n{e.method}" for e in estimates]
    for x, estimate in enumerate(estimates):
        bottom = 0.0
        for part, value, is_alive in _bar_segments(estimate):
            ax.bar(x, value, bottom=bottom, width=0.6, color=PART_COLORS[part] if is_alive else "white",
                   edgecolor=PART_COLORS[part], hatch=None if is_alive else "//", linewidth=0 if is_alive else 0.8)
            bottom += value
        ax.plot([x - 0.36, x + 0.36], [estimate.total / GIB] * 2, color="black", linewidth=1.5)  # the peak
        ax.annotate(f"peak {estimate.total / GIB:.1f}", (x, bottom), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    for k, name in enumerate(gpus):
        gpu = gpu_named(name)
        ax.axhline(gpu.capacity_gib, color="black", linestyle=(0, (4, 2 + 2 * k)), linewidth=1)
        ax.annotate(f"{gpu.name} {gpu.capacity_gib:.1f} GiB", (1.0, gpu.capacity_gib),
                    xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=8)
    ax.set_xticks(range(len(estimates)), labels)
    ax.set_ylabel("GiB")
    tops = [sum(value for _, value, _ in _bar_segments(e)) for e in estimates]
    ax.set_ylim(0, max(*tops, *(GPUS[g].capacity_gib for g in gpus)) * 1.12)
    ax.set_title("Estimated GPU memory of one training step")
    shown = [part for part in PART_COLORS
             if any(part == p and v > 0 for e in estimates for p, v, _ in _bar_segments(e))]
    handles = [Patch(color=PART_COLORS[part], label=part.replace("_", " ")) for part in shown]
    handles.append(Patch(facecolor="white", edgecolor="grey", hatch="//", label="not alive at the peak"))
    handles.append(Line2D([], [], color="black", linewidth=1.5, label="peak"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig

