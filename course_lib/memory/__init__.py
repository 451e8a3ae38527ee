"""Memory planner: how much GPU memory fine-tuning takes, part by part, and which GPUs it fits. Lessons 04 and 05.

- `shapes`: real models' shapes (the JSON files in `model_shapes/`, a transformers config, or a `ModelShape`),
  LoRA targets and trainable-parameter counts;
- `estimate`: `estimate_memory` (weights, gradients, optimiser state, activations, adapters, overhead) for full
  fine-tuning, LoRA, QLoRA and prompt tuning, the lessons' setups and the GPU fit table;
- `measure`: what autograd saves for the backward pass, and the peak of a real training step;
- `plot`: the breakdown as stacked bars against GPU capacities;
- `forms`: the ipywidgets forms (the LoRA trainable-parameter explorer and the planner);
- `__main__`: `python -m course_lib.memory --model SmolLM2-360M --method qlora --seq-len 2048 --batch-size 1`.

Everything a lesson calls is importable from `course_lib.memory` itself.
"""

from course_lib.memory.estimate import (
    ALLOCATOR_SLACK,
    ATTENTIONS,
    CUDA_CONTEXT_BYTES,
    DTYPE_BYTES,
    GIB,
    GPU,
    GPUS,
    LESSON_METHODS,
    METHODS,
    NF4_BLOCK,
    NF4_NESTED_BLOCK,
    OPTIMIZER_8BIT_BLOCK,
    OPTIMIZERS,
    LessonSetup,
    MemoryEstimate,
    OptimizerSpec,
    count_text,
    estimate_for_lesson,
    estimate_memory,
    gpu_named,
    quantized_bytes,
)
from course_lib.memory.measure import measure_peak_memory, measure_saved_activations
from course_lib.memory.plot import PART_COLORS, plot_breakdown
from course_lib.memory.shapes import (
    PROJECTIONS,
    SHAPES_DIR,
    SUPPORTED_MODEL_TYPES,
    TARGETS,
    ModelShape,
    ModelShapeError,
    known_models,
    load_shape_file,
    lora_trainable_parameters,
    model_shape,
    resolve_targets,
    shipped_shapes,
)

__all__ = [
    "PROJECTIONS",
    "SHAPES_DIR",
    "SUPPORTED_MODEL_TYPES",
    "TARGETS",
    "ModelShape",
    "ModelShapeError",
    "known_models",
    "load_shape_file",
    "lora_trainable_parameters",
    "model_shape",
    "resolve_targets",
    "shipped_shapes",
    "ALLOCATOR_SLACK",
    "ATTENTIONS",
    "CUDA_CONTEXT_BYTES",
    "DTYPE_BYTES",
    "GIB",
    "GPU",
    "GPUS",
    "LESSON_METHODS",
    "METHODS",
    "NF4_BLOCK",
    "NF4_NESTED_BLOCK",
    "OPTIMIZERS",
    "OPTIMIZER_8BIT_BLOCK",
    "LessonSetup",
    "MemoryEstimate",
    "OptimizerSpec",
    "count_text",
    "estimate_for_lesson",
    "estimate_memory",
    "gpu_named",
    "quantized_bytes",
    "measure_peak_memory",
    "measure_saved_activations",
    "PART_COLORS",
    "plot_breakdown",
]
