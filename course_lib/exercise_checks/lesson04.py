"""Lesson 04's exercise checks: LoRA by hand, against peft."""

from __future__ import annotations

from collections.abc import Callable

from course_lib.exercise_checks.report import call, close, fail, import_bitsandbytes_quietly, passed


class TwoLayers:
    """A small two-layer model with LoRA from peft on both layers, B not 0 (built on first use)."""

    def __init__(self, rank: int = 4, alpha: float = 8.0):
        import torch

        import_bitsandbytes_quietly()
        from peft import LoraConfig, get_peft_model
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.up = nn.Linear(8, 12)
                self.down = nn.Linear(12, 8)

            def forward(self, x):
                return self.down(torch.relu(self.up(x)))

        torch.manual_seed(4)
        self.rank, self.alpha = rank, alpha
        self.model = get_peft_model(Model(), LoraConfig(r=rank, lora_alpha=alpha, target_modules=["up", "down"]))
        with torch.no_grad():
            for layer in (self.layer("up"), self.layer("down")):
                layer.lora_B["default"].weight.normal_(0, 0.5)  # a trained adapter: B is no longer 0

    def layer(self, name: str):
        return getattr(self.model.base_model.model, name)

    def parts(self, name: str):
        layer = self.layer(name)
        return (layer.base_layer.weight.detach().clone(), layer.base_layer.bias.detach().clone(),
                layer.lora_A["default"].weight.detach().clone(), layer.lora_B["default"].weight.detach().clone())


def check_lora_forward(lora_forward: Callable) -> None:
    """Lesson 04: `lora_forward(x, weight, bias, A, B, alpha)` equals peft's LoRA layer."""
    import torch

    exercise = "lora_forward"
    model = TwoLayers()
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    weight, bias, A, B = model.parts("up")
    with torch.no_grad():
        want = model.layer("up")(x)
        got = call(exercise, lora_forward, x.clone(), weight, bias, A, B, model.alpha,
                   hint="y = x @ weight.T + bias + (alpha / r) * (x @ A.T @ B.T), where r = A.shape[0].")
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        fail(exercise,
             f"expected a tensor of shape {tuple(want.shape)}, got {getattr(got, 'shape', type(got).__name__)}",
             "A is r x in and B is out x r: x @ A.T has r columns, then @ B.T has out columns.")
    if close(got, want):
        return passed(exercise, "the output of a rank-4 layer matches peft's")
    base = x @ weight.T + bias
    if close(got, base):
        fail(exercise, "your output is the frozen layer's alone",
             "add the low-rank update (alpha / r) * x @ A.T @ B.T.")
    if close(got, base + model.alpha * (x @ A.T @ B.T)):
        fail(exercise, f"your update is scaled by alpha = {model.alpha:g}", "scale it by alpha / r (here 8 / 4 = 2).")
    fail(exercise, f"your output differs from peft's by up to {(got - want).abs().max():.3g}",
         "y = x @ weight.T + bias + (alpha / r) * (x @ A.T @ B.T).")


def check_lora_merge(lora_merge: Callable) -> None:
    """Lesson 04: `lora_merge(weight, A, B, alpha)` is the merged weight peft's merge_and_unload writes."""
    import torch

    exercise = "lora_merge"
    model = TwoLayers()
    parts = {name: model.parts(name) for name in ("up", "down")}
    merged = model.model.merge_and_unload()
    for name in ("up", "down"):
        weight, _, A, B = parts[name]
        want = getattr(merged, name).weight.detach()
        got = call(exercise, lora_merge, weight.clone(), A, B, model.alpha,
                   hint="merged = weight + (alpha / r) * B @ A: an out x in matrix like the weight itself.")
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            fail(exercise, f"the {name} layer's merged weight should have shape {tuple(want.shape)}, got "
                           f"{getattr(got, 'shape', type(got).__name__)}",
                 "B is out x r and A is r x in, so B @ A is out x in.")
        if not close(got, want):
            if close(got, weight):
                fail(exercise, f"your merged {name} weight is the frozen weight", "add (alpha / r) * B @ A to it.")
            fail(exercise, f"your merged {name} weight differs from peft's merge_and_unload by up to "
                           f"{(got - want).abs().max():.3g}", "merged = weight + (alpha / r) * B @ A.")
    return passed(exercise, "both layers' merged weights match peft's merge_and_unload")


def check_lora_parameters(lora_parameters: Callable) -> None:
    """Lesson 04: `lora_parameters(shapes, rank)` counts the adapter's trainable parameters as peft does."""
    exercise = "lora_parameters"
    for rank in (4, 16):
        model = TwoLayers(rank=rank, alpha=2 * rank)
        want = model.model.get_nb_trainable_parameters()[0]
        shapes = [tuple(model.layer(name).base_layer.weight.shape) for name in ("up", "down")]
        got = call(exercise, lora_parameters, list(shapes), rank,
                   hint="a layer with an out x in weight gets A (r x in) and B (out x r): r * (in + out) parameters.")
        if got != want:
            fail(exercise, f"for layers of shapes {shapes} at rank {rank} you count {got!r}, peft trains {want}",
                 "sum r * (in + out) over the adapted layers; the frozen weights and biases do not count.")
    return passed(exercise, "the adapter sizes at rank 4 and 16 match peft's trainable parameter count")

