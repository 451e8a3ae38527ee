"""Model shapes: the fields of a model's config.json that memory depends on, for shipped real models or any config."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

SHAPES_DIR = Path(__file__).resolve().parent / "model_shapes"
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
TARGETS: dict[str, tuple[str, ...]] = {
    "attention": PROJECTIONS[:4],  # LoRA on the attention projections only
    "all-linear": PROJECTIONS,  # LoRA on every linear layer of every block (peft's "all-linear": not lm_head)
}
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")  # decoder-only, RMSNorm, SwiGLU MLP


class ModelShapeError(ValueError):
    """A model shape is unknown, or its file or config lacks a field or holds a bad value."""


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer that decide its parameter count and its memory. Lesson 04."""

    name: str  # e.g. "SmolLM2-360M"
    model_type: str  # transformers' model_type: llama, mistral, qwen2 or qwen3
    hidden_size: int  # width of the residual stream
    intermediate_size: int  # width of the MLP (gate and up projections)
    num_layers: int  # decoder blocks
    num_heads: int  # query heads
    num_kv_heads: int  # key/value heads (fewer than num_heads with grouped-query attention)
    head_dim: int  # width of one head
    vocab_size: int  # rows of the embedding matrix
    tie_word_embeddings: bool  # the output layer reuses the embedding matrix
    biases: tuple[str, ...] = ()  # projections that carry a bias, e.g. ("q_proj", "k_proj", "v_proj") in Qwen2
    qk_norm: bool = False  # Qwen3 normalises queries and keys per head (two RMSNorms of head_dim per block)
    max_position_embeddings: int | None = None  # longest context the model was trained for

    def linears(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each projection of one block."""
        h, i = self.hidden_size, self.intermediate_size
        q, kv = self.num_heads * self.head_dim, self.num_kv_heads * self.head_dim
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    @property
    def linear_weights_per_layer(self) -> int:
        """Weights of the seven projections of one block: what QLoRA stores in 4 bits."""
        return sum(n_in * n_out for n_in, n_out in self.linears().values())

    @property
    def parameters_per_layer(self) -> int:
        """Parameters of one block: projection weights and biases, two RMSNorms (and Qwen3's q/k norms)."""
        biases = sum(self.linears()[name][1] for name in self.biases)
        norms = 2 * self.hidden_size + (2 * self.head_dim if self.qk_norm else 0)
        return self.linear_weights_per_layer + biases + norms

    @property
    def embedding_parameters(self) -> int:
        """The token embedding matrix."""
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_parameters(self) -> int:
        """The output layer's own matrix: none when tied to the embeddings."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def parameters(self) -> int:
        """All parameters: embeddings, blocks, final norm and the output layer."""
        blocks = self.num_layers * self.parameters_per_layer
        return self.embedding_parameters + blocks + self.hidden_size + self.lm_head_parameters  # + the final norm

    @property
    def quantizable_parameters(self) -> int:
        """Weights bitsandbytes stores in 4 bits: the projections of every block (not embeddings, norms, lm_head)."""
        return self.num_layers * self.linear_weights_per_layer

    def scaled(self, num_layers: int) -> ModelShape:
        """The same shape with another number of blocks, e.g. 2 for a model small enough to build in a test."""
        return replace(self, num_layers=num_layers, name=f"{self.name} ({num_layers} layers)")

    def to_config(self):
        """A `transformers` config of this shape, to build a randomly initialised model from."""
        from transformers import AutoConfig

        fields: dict[str, Any] = dict(
            hidden_size=self.hidden_size, intermediate_size=self.intermediate_size, num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads, num_key_value_heads=self.num_kv_heads, head_dim=self.head_dim,
            vocab_size=self.vocab_size, tie_word_embeddings=self.tie_word_embeddings,
        )
        if self.max_position_embeddings:
            fields["max_position_embeddings"] = self.max_position_embeddings
        if self.model_type in ("llama", "qwen3"):
            fields["attention_bias"] = "q_proj" in self.biases
        if self.model_type == "llama":
            fields["mlp_bias"] = "gate_proj" in self.biases
        return AutoConfig.for_model(self.model_type, **fields)

    @classmethod
    def from_config(cls, config: Any, name: str | None = None, where: str = "the config") -> ModelShape:
        """The shape of a `transformers` config (e.g. `model.config`) or of a config.json read as a dict."""
        get = config.get if isinstance(config, dict) else (lambda key, default=None: getattr(config, key, default))
        model_type = get("model_type")
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise ModelShapeError(
                f"{where}: model_type {model_type!r} is not supported; the planner knows "
                f"{', '.join(SUPPORTED_MODEL_TYPES)} (decoder-only models with RMSNorm and a gated MLP). "
                "Pick one of those models, or a shipped shape: "
                f"{', '.join(known_models())}."
            )

        def number(key: str, default: int | None = None) -> int:
            value = get(key, default)
            if value is None:
                raise ModelShapeError(f"{where}: field {key!r} is missing. Copy it from the model's config.json.")
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ModelShapeError(f"{where}: field {key!r} must be a positive whole number, not {value!r}.")
            return value

        hidden, heads = number("hidden_size"), number("num_attention_heads")
        tie = get("tie_word_embeddings")
        if not isinstance(tie, bool):
            raise ModelShapeError(
                f"{where}: field 'tie_word_embeddings' must be true or false, not {tie!r}: it decides whether the "
                "output layer has its own matrix. Copy it from the model's config.json."
            )
        biases: tuple[str, ...] = ()
        if model_type == "qwen2":
            biases = ("q_proj", "k_proj", "v_proj")  # Qwen2 always has q, k, v biases (none on o_proj)
        elif model_type in ("llama", "qwen3") and get("attention_bias", False):
            biases = ("q_proj", "k_proj", "v_proj", "o_proj")
        if model_type == "llama" and get("mlp_bias", False):
            biases += ("gate_proj", "up_proj", "down_proj")
        return cls(
            name=name or str(get("name_or_path", "") or get("_name_or_path", "") or model_type),
            model_type=model_type,
            hidden_size=hidden,
            intermediate_size=number("intermediate_size"),
            num_layers=number("num_hidden_layers"),
            num_heads=heads,
            num_kv_heads=number("num_key_value_heads", heads),
            head_dim=number("head_dim") if get("head_dim") is not None else hidden // heads,
            vocab_size=number("vocab_size"),
            tie_word_embeddings=tie,
            biases=biases,
            qk_norm=model_type == "qwen3",
            max_position_embeddings=get("max_position_embeddings"),
        )


def load_shape_file(path: Path | str) -> tuple[ModelShape, tuple[str, ...]]:
    """A shape file's ModelShape and its aliases; errors name the file and the field to fix."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelShapeError(
            f"{path}, line {err.lineno}: not valid JSON ({err.msg}). Fix the file or restore it from git."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise ModelShapeError(
            f"{path}: needs a 'config' object holding the model's config.json fields (see {SHAPES_DIR / 'README.md'})."
        )
    name = data.get("name", path.stem)
    aliases = data.get("aliases", [])
    if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
        raise ModelShapeError(f"{path}: field 'aliases' must be a list of Hub ids or paths, not {aliases!r}.")
    return ModelShape.from_config(data["config"], name=name, where=str(path)), tuple(aliases)


@lru_cache(maxsize=1)
def shipped_shapes() -> dict[str, tuple[ModelShape, tuple[str, ...]]]:
    return {shape.name: (shape, aliases) for shape, aliases in map(load_shape_file, sorted(SHAPES_DIR.glob("*.json")))}


def known_models() -> list[str]:
    """Names of the shipped model shapes, e.g. ["Llama-3.1-8B", "Qwen2.5-0.5B", ...]."""
    return sorted(shipped_shapes())


def model_shape(model: Any) -> ModelShape:
    """The shape of `model`: a shipped name or one of its Hub ids, a ModelShape, or a transformers config or dict."""
    if isinstance(model, ModelShape):
        return model
    if isinstance(model, str):
        wanted = model.strip().lower()
        for name, (shape, aliases) in shipped_shapes().items():
            if wanted == name.lower() or wanted in (a.lower() for a in aliases):
                return shape
        raise ModelShapeError(
            f"Unknown model {model!r}. Known names: {', '.join(known_models())} (their Hub ids work too). "
            "For another model pass its config instead: estimate_memory(AutoConfig.from_pretrained(<id>), ...) or "
            "estimate_memory(model.config, ...)."
        )
    if isinstance(model, dict) or hasattr(model, "model_type"):
        return ModelShape.from_config(model, where=f"config of {type(model).__name__}")
    raise ModelShapeError(
        f"Cannot read a model shape from a {type(model).__name__}. Pass a name ({', '.join(known_models())}), "
        "a ModelShape, or a transformers config such as model.config."
    )


def lora_trainable_parameters(shape: Any, rank: int = 16, targets: str | Sequence[str] = "all-linear") -> int:
    """Parameters LoRA trains: rank * (in + out) for each targeted projection of every block. Lesson 04."""
    shape = model_shape(shape)
    names = resolve_targets(targets)
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 1:
        raise ValueError(f"rank must be a whole number of at least 1, not {rank!r}.")
    linears = shape.linears()
    return shape.num_layers * sum(rank * (linears[name][0] + linears[name][1]) for name in names)


def resolve_targets(targets: str | Sequence[str]) -> tuple[str, ...]:
    """The projection names a LoRA `targets` setting means: "attention", "all-linear", or a list of names."""
    if isinstance(targets, str):
        if targets in TARGETS:
            return TARGETS[targets]
        targets = [targets]
    names = tuple(targets)
    unknown = [name for name in names if name not in PROJECTIONS]
    if unknown or not names:
        raise ValueError(
            f"LoRA targets {list(names)!r}: {unknown or 'none given'} not understood. Use 'attention', 'all-linear', "
            f"or a list of projection names from {', '.join(PROJECTIONS)}."
        )
    return names

