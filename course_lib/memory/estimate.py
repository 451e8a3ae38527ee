"""The memory estimate: the bytes of each part of a training step, its peak, and the GPUs it fits. Lesson 05.

`estimate_memory(model, method=..., seq_len=..., batch_size=..., ...)` counts, in bytes:

- weights: the model's parameters as training holds them (fp32 master weights plus autocast's 16-bit copies for
  mixed-precision full fine-tuning; 16-bit for a LoRA base; 4-bit NF4 plus scales for a QLoRA base);
- gradients: one per trainable parameter;
- optimizer state: the optimiser's moments per trainable parameter (AdamW: two);
- activations: what autograd saves for the backward pass (counted tensor by tensor for the Llama/Qwen code of
  transformers; `course_lib.memory.measure` measures the same on any machine) and the loss's logit-sized buffers;
- adapters: LoRA's A and B matrices, or prompt tuning's soft prompt (fp32, as peft keeps them);
- overhead: the CUDA context and the caching allocator's unused reserve.

Not every part is alive at once: the backward pass frees activations while it fills in gradients. The peak
(`estimate.total`) is the larger of two moments, the start of the backward pass (all activations, no gradients)
and the optimiser step (all gradients and the update's scratch memory, no activations), plus the overhead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from course_lib.memory.shapes import TARGETS, ModelShape, lora_trainable_parameters, model_shape, resolve_targets

GIB = 2**30  # memory is reported in GiB (2**30 bytes), the unit PyTorch and nvidia-smi use


# ---------------------------------------------------------------------------------------------------------
# 1) GPUs, precisions, optimisers


@dataclass(frozen=True)
class GPU:
    """A GPU model and the memory PyTorch can see on it."""

    name: str  # e.g. "T4"
    nominal_gb: int  # what the card is sold as, in GB
    capacity_gib: float  # total capacity PyTorch reports (its out-of-memory message), in GiB: less than nominal

    @property
    def capacity(self) -> int:
        """Capacity in bytes."""
        return int(self.capacity_gib * GIB)


# Capacities as PyTorch reports them in "GPU 0 has a total capacity of ... GiB" (seen in public issue reports:
# T4 googlecolab/colabtools#3439, L4 ArcInstitute/evo2#190, A100 40 GB TianheWu/CoSeR#10,
# A100 80 GB levihsu/OOTDiffusion#235, H100 80 GB vllm-project/vllm#27508). The CUDA context comes out of it.
GPUS: dict[str, GPU] = {
    gpu.name: gpu
    for gpu in (
        GPU("T4", 16, 14.75),  # Colab's free GPU; no bfloat16
        GPU("L4", 24, 22.03),
        GPU("A100-40GB", 40, 39.50),
        GPU("A100-80GB", 80, 79.25),
        GPU("H100", 80, 79.11),
    )
}

# CUDA context and loaded kernels: 300-600 MiB with recent drivers; torch does not count it
CUDA_CONTEXT_BYTES = 512 * 2**20
# memory PyTorch's caching allocator reserves but cannot reuse (fragmentation), per byte allocated
ALLOCATOR_SLACK = 0.10

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
METHODS = ("full", "lora", "qlora", "prompt")  # prompt: prompt tuning, a soft prompt on a frozen model
ATTENTIONS = ("sdpa", "eager")

NF4_BLOCK = 64  # values sharing one absmax scale in bitsandbytes' 4-bit quantisation (its default blocksize)
NF4_NESTED_BLOCK = 256  # absmax values sharing one fp32 scale with double quantisation (absmax stored in 8 bits)
OPTIMIZER_8BIT_BLOCK = 256  # values sharing one fp32 scale in bitsandbytes' 8-bit optimiser states


@dataclass(frozen=True)
class OptimizerSpec:
    """What an optimiser keeps per trainable parameter."""

    name: str
    moments: int  # state tensors per parameter (AdamW: first and second moment)
    eight_bit: bool  # moments stored in 8 bits, one fp32 scale per 256 values (bitsandbytes)
    scratch: int  # temporary copies of a moment made during the update
    summary: str

    def state_bytes(self, param_bytes: int) -> float:
        """Bytes of state per trainable parameter stored in `param_bytes` bytes."""
        if self.eight_bit:
            return self.moments * (1 + 4 / OPTIMIZER_8BIT_BLOCK)
        return self.moments * param_bytes

    def scratch_bytes(self, param_bytes: int) -> float:
        """Bytes of temporary memory per trainable parameter during the update."""
        return self.scratch * param_bytes


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec("adamw", 2, False, 1, "torch AdamW: two moments in the parameters' precision; its multi-tensor "
                      "update makes one temporary copy of the second moment"),
        OptimizerSpec("adamw_8bit", 2, True, 0, "bitsandbytes 8-bit AdamW: two moments in 8 bits (tensors under 4096 "
                      "values keep 32-bit moments, a negligible amount)"),
        OptimizerSpec("paged_adamw_8bit", 2, True, 0, "bitsandbytes paged 8-bit AdamW: as adamw_8bit, in memory that "
                      "can move to CPU RAM under pressure; counted on the GPU here"),
        OptimizerSpec("paged_adamw", 2, False, 0, "bitsandbytes paged 32-bit AdamW: two moments, in pageable memory"),
        OptimizerSpec("sgd", 0, False, 0, "plain SGD: no state"),
        OptimizerSpec("sgd_momentum", 1, False, 0, "SGD with momentum: one buffer"),
    )
}


@dataclass(frozen=True)
class LessonSetup:
    """How a training lesson fine-tunes: its method and how many sequences one example becomes."""

    method: str
    sequences_per_example: int  # DPO runs the chosen and the rejected answer: 2
    summary: str


LESSON_METHODS: dict[str, LessonSetup] = {
    "03": LessonSetup("full", 1, "full supervised fine-tuning"),
    "04": LessonSetup("lora", 1, "LoRA"),
    "05": LessonSetup("qlora", 1, "QLoRA"),
    # DPO scores a chosen and a rejected answer per example; its reference model is the same model with the adapter
    # switched off, run without gradients, so it needs no second copy of the weights.
    "06": LessonSetup("lora", 2, "DPO with LoRA"),
}


def _check_choice(what: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{what}={value!r} is not one of {', '.join(map(repr, choices))}.")


def quantized_bytes(numel: int, double_quant: bool = True) -> int:
    """Bytes of one weight tensor in bitsandbytes NF4: 4 bits a value plus its block scales. Lesson 05."""
    blocks = math.ceil(numel / NF4_BLOCK)
    if double_quant:  # absmax in 8 bits, an fp32 scale per 256 of them, and one fp32 offset
        scales = blocks + 4 * math.ceil(blocks / NF4_NESTED_BLOCK) + 4
    else:  # one fp32 absmax per block: 0.5 bit per value
        scales = 4 * blocks
    return (numel + 1) // 2 + scales


# ---------------------------------------------------------------------------------------------------------
# 2) The estimate


@dataclass(frozen=True)
class MemoryEstimate:
    """Memory of one training step, part by part, in bytes; `print(estimate)` shows the parts and the GPUs it fits.

    The parts are sizes. Not all of them are alive at once: the backward pass frees activations as it fills in
    gradients, so the peak (`total`) is the larger of two moments: the start of the backward pass (weights,
    optimiser state, adapters, activations) and the optimiser step (weights, optimiser state, adapters, gradients
    and the update's scratch memory), plus the overhead.
    """

    # settings
    model: str
    method: str
    seq_len: int
    batch_size: int
    sequences_per_example: int
    optimizer: str
    gradient_checkpointing: bool
    dtype: str
    mixed_precision: bool
    rank: int | None  # LoRA rank (lora, qlora), else None
    targets: tuple[str, ...]
    parameters: int  # of the model
    trainable_parameters: int
    # the parts, in bytes
    weights: int  # as stored, plus autocast's 16-bit copies (weight_copies) that live through forward and backward
    gradients: int  # one per trainable parameter
    optimizer_state: int  # the optimiser's moments
    activations: int  # saved for the backward pass, and the loss's logit-sized buffers
    adapters: int  # LoRA's A and B matrices, and their autocast copies
    overhead: int  # CUDA context and the allocator's unusable reserve
    # autocast's 16-bit copies, inside `weights` (full) or `adapters` (LoRA); freed before the step
    weight_copies: int = 0
    optimizer_scratch: int = 0  # temporary memory of the optimiser's update
    # how the activations were counted, per token (bytes)
    saved_per_token_per_layer: int = 0  # what autograd saves inside one block without checkpointing
    saved_per_token_outside_layers: int = 0  # final norm, fp32 log-probabilities of the loss, token ids
    notes: tuple[str, ...] = field(default=())
    virtual_tokens: int = 0  # prompt tuning: the soft prompt's length, prepended to every sequence

    PARTS = ("weights", "gradients", "optimizer_state", "activations", "adapters", "overhead")

    @property
    def tokens(self) -> int:
        """Tokens in one step's batch (a soft prompt's virtual tokens included)."""
        return self.batch_size * self.sequences_per_example * (self.seq_len + self.virtual_tokens)

    def parts(self) -> dict[str, int]:
        """The six parts, in bytes."""
        return {part: getattr(self, part) for part in self.PARTS}

    @property
    def backward_peak(self) -> int:
        """Bytes allocated at the start of the backward pass: activations all saved, no gradient yet."""
        return self.weights + self.optimizer_state + self.adapters + self.activations

    @property
    def step_peak(self) -> int:
        """Bytes allocated during the optimiser step: every gradient and the update's scratch, no activations."""
        held = self.weights - self.weight_copies + self.optimizer_state + self.adapters
        return held + self.gradients + self.optimizer_scratch

    @property
    def peak_phase(self) -> str:
        """When the peak happens: "backward pass" or "optimizer step"."""
        return "backward pass" if self.backward_peak >= self.step_peak else "optimizer step"

    @property
    def allocated(self) -> int:
        """The peak without the overhead: what torch.cuda.max_memory_allocated would report."""
        return max(self.backward_peak, self.step_peak)

    @property
    def total(self) -> int:
        """The estimated peak, overhead included, in bytes: compare it with a GPU's capacity."""
        return self.allocated + self.overhead

    def state_bytes_per_parameter(self) -> float:
        """Weights, gradients, optimiser state and adapters per model parameter (no activations or overhead)."""
        return (self.weights + self.gradients + self.optimizer_state + self.adapters) / self.parameters

    def margin(self, gpu: str = "T4") -> float:
        """Share of the GPU's capacity left over (negative when it does not fit)."""
        capacity = gpu_named(gpu).capacity
        return (capacity - self.total) / capacity

    def fits(self, gpu: str = "T4", margin: float = 0.0) -> bool:
        """True when the estimate fits `gpu` with at least `margin` of its capacity to spare."""
        return self.margin(gpu) >= margin

    def describe(self) -> str:
        """One line: model, method, batch and precision settings."""
        precision = self.dtype + (" with autocast" if self.mixed_precision and self.dtype != "float32" else "")
        lora = f", LoRA rank {self.rank} on {_targets_name(self.targets)}" if self.method in ("lora", "qlora") else ""
        if self.method == "prompt":
            lora = f", a soft prompt of {self.virtual_tokens} virtual tokens"
        sequences = f" ({self.sequences_per_example} sequences per example)" if self.sequences_per_example > 1 else ""
        checkpointing = "on" if self.gradient_checkpointing else "off"
        return (f"{self.model}, {self.method}: batch {self.batch_size} x {self.seq_len} tokens{sequences}, "
                f"{precision}, {self.optimizer}, gradient checkpointing {checkpointing}{lora}")

    def adjustments(self) -> dict[str, int]:
        """What turns the sum of the parts into the peak: parts not alive at the peak (negative), scratch (positive)."""
        if self.peak_phase == "backward pass":
            return {"not yet allocated: gradients": -self.gradients}
        adjustments = {"freed before the step: activations, copies": -(self.activations + self.weight_copies)}
        if self.optimizer_scratch:
            adjustments["optimizer update scratch"] = self.optimizer_scratch
        return adjustments

    def table(self) -> str:
        """The breakdown as plain text: the parts in GiB, what is not alive at the peak, and the peak."""
        share = self.trainable_parameters / self.parameters
        lines = [
            self.describe(),
            f"parameters: {count_text(self.parameters)}, trainable: {count_text(self.trainable_parameters)} "
            f"({share:.2%})",
            f"{'part':<44}{'GiB':>8}",
        ]
        for part, value in self.parts().items():
            lines.append(f"{part.replace('_', ' '):<44}{value / GIB:>8.2f}")
        for label, value in self.adjustments().items():
            if value:
                lines.append(f"{label:<44}{value / GIB:>+8.2f}")
        lines.append(f"{f'total: the peak, in the {self.peak_phase}':<44}{self.total / GIB:>8.2f}")
        lines += [f"- {note}" for note in self.notes]
        return "\n".join(lines)

    def fit_table(self, gpus: Sequence[str] | None = None) -> str:
        """Which GPUs the estimate fits, with the memory left over, as plain text."""
        lines = [f"{'GPU':<18}{'capacity':>10}{'estimate':>10}{'left':>10}{'margin':>8}  fits"]
        for name in gpus or GPUS:
            gpu = gpu_named(name)
            left = gpu.capacity - self.total
            lines.append(
                f"{f'{gpu.name} ({gpu.nominal_gb} GB)':<18}{gpu.capacity_gib:>6.2f} GiB{self.total / GIB:>6.2f} GiB"
                f"{left / GIB:>6.2f} GiB{self.margin(name):>8.0%}  {'yes' if left >= 0 else 'no'}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return f"{self.table()}\n\n{self.fit_table()}"


def gpu_named(name: str) -> GPU:
    if name not in GPUS:
        raise ValueError(f"Unknown GPU {name!r}. Known GPUs: {', '.join(GPUS)}.")
    return GPUS[name]


def _targets_name(targets: tuple[str, ...]) -> str:
    for name, names in TARGETS.items():
        if targets == names:
            return name
    return ", ".join(targets)


def count_text(n: int) -> str:
    """A parameter count in words: 361.8M, 7.62B."""
    if n >= 1e9:
        return f"{n / 1e9:.2f}B"
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n:,}"


def _saved_per_token(
    shape: ModelShape, method: str, *, residual: int, compute: int, linear_out: int, autocast: bool,
    seq_len: int, targets: tuple[str, ...], rank: int, attention: str, padding: bool,
) -> tuple[int, int]:
    """Bytes autograd saves per token inside one block, and outside the blocks (final norm and log-probs).

    The count follows the modelling code of transformers' Llama/Qwen blocks, tensor by tensor (checked against
    autograd's saved tensors in tests/test_memory.py). It refines the per-layer formula of Korthikanti et al.
    2022, "Reducing Activation Recomputation in Large Transformer Models" (34*h + 5*a*s bytes per token at
    16 bits, for GPT blocks), to RMSNorm computed in fp32, a SwiGLU MLP, grouped-query attention and frozen bases.
    `residual`, `compute` and `linear_out` are the element sizes of the residual stream, of autocast's 16-bit
    operations and of the projections' outputs.
    """
    h, i, heads = shape.hidden_size, shape.intermediate_size, shape.num_heads
    q, kv = heads * shape.head_dim, shape.num_kv_heads * shape.head_dim
    full = method == "full"
    attn = compute  # attention runs in autocast's 16 bits, else in the residual stream's precision
    # 1) two RMSNorms: each keeps an fp32 copy of its input and one scale per token; a trainable norm weight also
    #    needs the normalised input
    layer = 2 * (4 * h + 4) + (2 * residual * h if full else 0)
    # 2) attention: q, k, v and the output; with a padding mask (or eager attention) transformers repeats k and v
    #    to every query head first (a copy, except with a single key/value head, where it is a view)
    kv_saved = q if (padding or attention == "eager") and shape.num_kv_heads > 1 else kv
    layer += attn * (2 * q + 2 * kv_saved)
    if attention == "sdpa":  # flash / memory-efficient kernels: no seq_len**2 matrix
        layer += 4 * heads + (attn * seq_len if padding else 0)  # fp32 log-sum-exp per head; the mask row
    else:  # eager: the attention matrix, as fp32 softmax output and as its copy in the compute dtype
        layer += (4 + attn) * heads * seq_len
    # 3) MLP: gate output (the SiLU input), SiLU output and up output
    layer += 3 * linear_out * i
    # 4) full fine-tuning: the inputs of the projections, for their weight gradients
    if full:
        if autocast and residual != compute:  # fp32 norm outputs: each projection keeps its own 16-bit cast
            layer += compute * 5 * h  # q, k, v, gate, up (o_proj's input is the attention output, kept above)
        else:  # one norm output shared by q, k, v and one by gate, up
            layer += residual * 2 * h
        layer += linear_out * i  # down_proj's input
    # 5) LoRA: each adapter keeps its input (in the adapter's precision) and the rank-r output of A
    linears = shape.linears()
    if targets:
        if autocast:  # peft casts to fp32 and autocast back to 16 bits: one copy per adapter
            layer += sum(compute * (linears[name][0] + rank) for name in targets)
        elif residual != 4:  # 16-bit base, fp32 adapters: one fp32 copy of the input per adapter
            layer += sum(4 * (linears[name][0] + rank) for name in targets)
        else:  # fp32 throughout: adapters read the tensors themselves, shared between q/k/v and between gate/up
            layer += 4 * rank * len(targets)
            attention_input = any(n in targets for n in ("q_proj", "k_proj", "v_proj"))
            mlp_input = any(n in targets for n in ("gate_proj", "up_proj"))
            layer += 4 * h * (attention_input + mlp_input)
            layer += 4 * i * ("down_proj" in targets)  # o_proj reads the attention output, kept above
    # outside the blocks: the final norm (and the output layer's input when it is trained), the fp32
    # log-probabilities the cross-entropy keeps, and the int64 token ids and labels
    outside = 4 * h + 4 + 4 * shape.vocab_size + 16
    if full:
        outside += residual * h + (compute if autocast and residual != compute else residual) * h
    return layer, outside


def estimate_memory(
    model: Any,  # a shipped name or Hub id, a ModelShape, or a transformers config such as model.config
    method: str = "lora",  # "full", "lora", "qlora" or "prompt" (prompt tuning)
    *,
    seq_len: int = 512,  # tokens per sequence (the training max_length)
    batch_size: int = 8,  # sequences per optimiser step on this GPU
    optimizer: str = "adamw",  # a key of OPTIMIZERS
    gradient_checkpointing: bool = True,  # keep only each block's input and recompute the rest in the backward pass
    dtype: str = "bfloat16",  # precision of the computation: "float32", "bfloat16" or "float16"
    # train under autocast (Trainer's bf16=/fp16=True); full FT then keeps fp32 master weights
    mixed_precision: bool = True,
    rank: int = 16,  # LoRA rank (lora, qlora)
    virtual_tokens: int = 20,  # prompt: the soft prompt's length, in tokens (peft's num_virtual_tokens)
    targets: str | Sequence[str] = "all-linear",  # LoRA targets: "attention", "all-linear", or projection names
    double_quant: bool = True,  # QLoRA: quantise the 4-bit scales too (bnb_4bit_use_double_quant)
    upcast_unquantized: bool = False,  # QLoRA: peft's prepare_model_for_kbit_training casts non-4-bit weights to fp32
    attention: str = "sdpa",  # "sdpa" (flash / memory-efficient kernels) or "eager" (keeps the seq_len**2 matrix)
    padding: bool = True,  # batches are padded (as TRL's collators do), so attention gets a mask
    sequences_per_example: int = 1,  # 2 for DPO: a chosen and a rejected answer per example
) -> MemoryEstimate:
    """Estimate the GPU memory of one fine-tuning step, part by part. Lesson 05.

    Precision, as the Hugging Face Trainer runs it:
    - full, mixed_precision: fp32 weights (4 bytes) + autocast's 16-bit copies of the matmul weights (2), fp32
      gradients (4), AdamW's fp32 moments (8): about 18 bytes per parameter, the accounting of the transformers
      guide "Model training anatomy" (ZeRO's 16 = 2 + 2 + 12 keeps no fp32 gradients).
    - full without mixed_precision (or dtype float32): weights, gradients and moments all in `dtype`.
    - lora / qlora: the base frozen in `dtype` (qlora: its projections in NF4, 0.5 byte + scales a value;
      embeddings, norms and lm_head stay in `dtype`, or fp32 with `upcast_unquantized`, when autocast also
      keeps a 16-bit copy of the output layer); the adapters, their gradients and their optimiser state in fp32,
      as peft keeps them.
    - prompt: the base frozen in `dtype`, as for lora; the soft prompt (`virtual_tokens` x hidden size), its
      gradient and its optimiser state in fp32. Every sequence is `virtual_tokens` longer, and the backward pass runs
      through every block down to the input, so the activations are those of a LoRA run without adapters. Lesson 04.

    Checked against autograd's saved tensors and against measured CPU training steps in tests/test_memory.py,
    and against measured GPU peaks by benchmarks/memory_peak.py.
    """
    shape = model_shape(model)
    _check_choice("method", method, METHODS)
    _check_choice("optimizer", optimizer, list(OPTIMIZERS))
    _check_choice("dtype", dtype, list(DTYPE_BYTES))
    _check_choice("attention", attention, ATTENTIONS)
    for name, value in (("seq_len", seq_len), ("batch_size", batch_size),
                        ("sequences_per_example", sequences_per_example)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}.")
    opt = OPTIMIZERS[optimizer]
    size = DTYPE_BYTES[dtype]
    autocast = mixed_precision and size == 2
    n = shape.parameters
    biases = shape.num_layers * sum(shape.linears()[name][1] for name in shape.biases)
    # autocast copies these
    matmul_weights = shape.quantizable_parameters + biases + shape.vocab_size * shape.hidden_size
    names = resolve_targets(targets) if method in ("lora", "qlora") else ()
    if method != "prompt":
        virtual_tokens = 0
    elif isinstance(virtual_tokens, bool) or not isinstance(virtual_tokens, int) or virtual_tokens < 1:
        raise ValueError(f"virtual_tokens={virtual_tokens!r}: the soft prompt needs at least 1 token, e.g. "
                         f"virtual_tokens=20.")
    notes = [f"optimizer: {opt.summary}"]
    copies = 0  # autocast's 16-bit copies of fp32 weights

    # 1) weights, gradients, optimiser state, adapters
    if method == "full":
        trainable, adapters = n, 0
        if autocast:
            residual, param_bytes = 4, 4
            copies = size * matmul_weights
            weights = 4 * n + copies
            notes.append("weights: fp32 master weights + autocast's 16-bit copies of every matmul weight")
        else:
            residual = param_bytes = size
            weights = size * n
        gradients = param_bytes * n
        linear_out = size if autocast else residual
    else:
        trainable = (virtual_tokens * shape.hidden_size if method == "prompt"
                     else lora_trainable_parameters(shape, rank, names))
        base_other = n - shape.quantizable_parameters
        if method in ("lora", "prompt"):  # a frozen base in `dtype`
            residual = size
            weights = size * n
            linear_out = size
        else:
            residual = 4 if upcast_unquantized else size
            per_layer = sum(quantized_bytes(a * b, double_quant) for a, b in shape.linears().values())
            weights = shape.num_layers * per_layer + residual * base_other
            linear_out = residual  # bitsandbytes casts its output back to the input's precision
            if autocast and upcast_unquantized:  # the fp32 output layer gets a 16-bit autocast copy, kept for backward
                copies = size * shape.vocab_size * shape.hidden_size
                weights += copies
            notes.append(f"weights: projections in NF4 ({'with' if double_quant else 'without'} double quantisation), "
                         f"embeddings, norms and lm_head in {'float32' if upcast_unquantized else dtype}")
        param_bytes = 4  # peft keeps adapters in fp32
        adapter_copies = size * trainable if autocast else 0
        adapters = 4 * trainable + adapter_copies
        copies += adapter_copies
        gradients = 4 * trainable
        what = "the soft prompt" if method == "prompt" else "LoRA A and B"
        notes.append(f"adapters: {what} in fp32" + (" + autocast's 16-bit copies" if autocast else ""))
    optimizer_state = round(opt.state_bytes(param_bytes) * trainable)
    compute = size if autocast else residual

    # 2) activations; a soft prompt lengthens every sequence, and the backward pass runs through all of it
    length = seq_len + virtual_tokens
    layer, outside = _saved_per_token(
        shape, method, residual=residual, compute=compute, linear_out=linear_out, autocast=autocast,
        seq_len=length, targets=names, rank=rank, attention=attention, padding=padding,
    )
    tokens = batch_size * sequences_per_example * length
    loss_buffers = 8 * shape.vocab_size  # two fp32 logit-sized gradients at the start of the backward pass
    if gradient_checkpointing:
        # each block keeps its input; the backward pass recomputes one block at a time (after the loss buffers are
        # freed)
        activations = tokens * (shape.num_layers * residual * shape.hidden_size + outside + max(loss_buffers, layer))
    else:
        activations = tokens * (shape.num_layers * layer + outside + loss_buffers)
    activations += 2 * length * shape.head_dim * residual  # the rotary cos and sin tables, shared by the batch
    notes.append(f"activations: {tokens:,} tokens; the loss's fp32 log-probabilities and gradients of the logits "
                 f"take {tokens * 12 * shape.vocab_size / GIB:.2f} GiB of them (12 bytes x {shape.vocab_size:,} "
                 "vocabulary entries per token)")
    if method == "qlora":  # one projection at a time is dequantised to 16 bits for its matmul
        activations += size * max(a * b for a, b in shape.linears().values())
    scratch = round(opt.scratch_bytes(param_bytes) * trainable)

    # 3) the peak is the larger of the backward pass's start and the optimiser step; then the overhead
    backward_peak = weights + optimizer_state + adapters + activations
    step_peak = weights - copies + optimizer_state + adapters + gradients + scratch
    overhead = CUDA_CONTEXT_BYTES + round(ALLOCATOR_SLACK * max(backward_peak, step_peak))
    return MemoryEstimate(
        model=shape.name, method=method, seq_len=seq_len, batch_size=batch_size,
        sequences_per_example=sequences_per_example, optimizer=optimizer,
        gradient_checkpointing=gradient_checkpointing, dtype=dtype, mixed_precision=mixed_precision,
        rank=rank if method in ("lora", "qlora") else None, targets=names, parameters=n, trainable_parameters=trainable,
        weights=round(weights), gradients=round(gradients), optimizer_state=optimizer_state,
        activations=round(activations), adapters=round(adapters), overhead=overhead, weight_copies=round(copies),
        optimizer_scratch=scratch,
        saved_per_token_per_layer=layer, saved_per_token_outside_layers=outside, notes=tuple(notes),
        virtual_tokens=virtual_tokens,
    )


def estimate_for_lesson(profile: Any, lesson: str, **overrides: Any) -> MemoryEstimate:
    """The estimate for a training lesson run with a profile's model, batch size, length and precision. Lesson 05.

    It plans the recipe the code runs: on a GPU profile, autocast in the profile's 16 bits over float32 trainable
    weights (`training.upcast_trainable`): the whole model in float32 for full fine-tuning (lesson 03), float32
    adapters on a 16-bit base (04, 06), on a 4-bit base whose other weights peft casts to float32 (05).
    """
    if lesson not in LESSON_METHODS:
        raise KeyError(f"Lesson {lesson!r} does not train; training lessons: {', '.join(LESSON_METHODS)}.")
    setup = LESSON_METHODS[lesson]
    settings: dict[str, Any] = dict(
        method=setup.method, seq_len=profile.max_length, batch_size=profile.batch_size, dtype=profile.dtype,
        gradient_checkpointing=profile.needs_cuda,  # training.sft_config turns it on on GPUs
        sequences_per_example=setup.sequences_per_example,
    )
    if setup.method != "full":
        settings["rank"] = profile.lora_rank
    if setup.method == "qlora":  # lesson 05 readies the 4-bit model with prepare_model_for_kbit_training
        settings["upcast_unquantized"] = True
    settings.update(overrides)
    return estimate_memory(profile.model, **settings)
