"""Interactive forms: the LoRA parameter explorer (lesson 04) and the memory planner form (lesson 05).

Each form is an ipywidgets box: change a control and its report is redrawn. The report's plain text is also
on `form.text`, so a form can be read (and tested) without a screen.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from course_lib.memory.estimate import DTYPE_BYTES, METHODS, OPTIMIZERS, MemoryEstimate, estimate_memory
from course_lib.memory.shapes import known_models, lora_trainable_parameters, model_shape, resolve_targets

TARGET_CHOICES = [("attention only", "attention"), ("all linear layers", "all-linear")]


class _Form(widgets.VBox):
    """Controls on top, a text report below, redrawn whenever a control changes."""

    def __init__(self, controls: dict[str, widgets.ValueWidget]) -> None:
        super().__init__()
        self.controls = controls
        self.report = widgets.HTML()
        self.text = ""
        for control in controls.values():
            control.observe(self._redraw, names="value")
        self.children = [widgets.VBox(list(controls.values())), self.report]
        self._redraw()

    def values(self) -> dict[str, Any]:
        """The controls' current values, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def render(self) -> str:
        raise NotImplementedError

    def _redraw(self, change: Any = None) -> None:
        self.text = self.render()
        self.report.value = f"<pre>{html.escape(self.text)}</pre>"


class LoraExplorer(_Form):
    """Trainable LoRA parameters of a real model's shape as rank and targets change. Lesson 04."""

    def render(self) -> str:
        values = self.values()
        shape = model_shape(values["model"])
        rank, names = values["rank"], resolve_targets(values["targets"])
        trainable = lora_trainable_parameters(shape, rank=rank, targets=names)
        lines = [
            f"{shape.name}: LoRA rank {rank} on {values['targets']} ({', '.join(names)})",
            f"trainable parameters: {trainable:,} = {trainable / shape.parameters:.3%} of the model's "
            f"{shape.parameters:,}",
            f"per block ({shape.num_layers} blocks), rank x (in + out):",
        ]
        for name in names:
            n_in, n_out = shape.linears()[name]
            lines.append(f"  {name:<10} {rank} x ({n_in} + {n_out}) = {rank * (n_in + n_out):,}")
        return "\n".join(lines)


class MemoryForm(_Form):
    """The memory estimate of a fine-tuning step and the GPUs it fits, redrawn as the settings change. Lesson 05."""

    def estimate(self) -> MemoryEstimate:
        """The estimate for the current settings."""
        return estimate_memory(**self.values())

    def render(self) -> str:
        return str(self.estimate())


def lora_explorer(model: str = "SmolLM2-360M", rank: int = 16, targets: str = "attention") -> LoraExplorer:
    """A form: model, rank (1 to 256) and targets in; trainable parameters and their share of the model out.
    Lesson 04."""
    style = {"description_width": "initial"}
    return LoraExplorer({
        "model": widgets.Dropdown(options=known_models(), value=model_shape(model).name, description="model",
                                  style=style),
        "rank": widgets.IntSlider(value=rank, min=1, max=256, description="rank", style=style, continuous_update=False),
        "targets": widgets.ToggleButtons(options=TARGET_CHOICES, value=targets, description="targets", style=style),
    })


def memory_form(
    model: str = "SmolLM2-360M",
    method: str = "qlora",
    seq_len: int = 512,
    batch_size: int = 8,
    optimizer: str = "adamw",
    gradient_checkpointing: bool = True,
    dtype: str = "float16",
) -> MemoryForm:
    """A form: model, method, lengths, optimiser and precision in; the breakdown and fit table out. Lesson 05."""
    style = {"description_width": "initial"}
    return MemoryForm({
        "model": widgets.Dropdown(options=known_models(), value=model_shape(model).name, description="model",
                                  style=style),
        "method": widgets.ToggleButtons(options=list(METHODS), value=method, description="method", style=style),
        "seq_len": widgets.IntSlider(value=seq_len, min=64, max=8192, step=64, description="sequence length",
                                     style=style, continuous_update=False),
        "batch_size": widgets.IntSlider(value=batch_size, min=1, max=64, description="batch size", style=style,
                                        continuous_update=False),
        "optimizer": widgets.Dropdown(options=list(OPTIMIZERS), value=optimizer, description="optimizer", style=style),
        "gradient_checkpointing": widgets.Checkbox(value=gradient_checkpointing, description="gradient checkpointing"),
        "dtype": widgets.Dropdown(options=list(DTYPE_BYTES), value=dtype, description="dtype", style=style),
    })

