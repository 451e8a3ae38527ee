"""Load the profile's model with its weights quantised by bitsandbytes, and measure what it takes. Lesson 05.

Lesson 05a writes NF4 and double quantisation by hand and checks them against bitsandbytes; lesson 05b trains QLoRA
on the 4-bit model. This module holds the plumbing around them:

- `bnb_config`: transformers' `BitsAndBytesConfig` from the profile: NF4 with double quantisation and the
  profile's dtype for the computation (4 bits), or LLM.int8 (8 bits);
- `load_quantized`: the profile's model in 4 or 8 bits and its tokenizer, loaded as safely as
  `course_lib.models.load_model_and_tokenizer` loads it (safetensors only, no remote code, offline for `tiny`);
- `footprint_bytes`: the bytes a model holds, the quantisation scales included;
- `KeepTrainableFloat32`: a training callback that keeps the adapters in float32 when TRL would cast them to
  bfloat16, so that they train in the profile's precision and a resumed run keeps training them;
- `qlora_settings`, `load_or_train`: lesson 05b's QLoRA adapter, saved with its settings and reused by lesson 07,
  or trained again (in two calls if need be, each short enough for one notebook cell on a CPU), as a `runs.SavedRun`.

bitsandbytes' 4-bit and 8-bit layers also run on the CPU. On a CPU with AVX-512 bfloat16 but without the optional
`kernels` package, importing bitsandbytes logs "Failed to load CPU gemm_4bit_forward from kernels-community"; it
then uses its plain PyTorch code, which gives the same results. On such a CPU bitsandbytes would also switch a 4-bit
layer to a bfloat16 kernel the first time it runs for inference; `load_quantized` turns that off
(`_same_computation_on_every_cpu`), so that a 4-bit model computes alike on every CPU, in training and inference.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from course_lib import lora, runs
from course_lib.checks import whole_number
from course_lib.models import REBUILD_COMMAND, ModelFileError, check_model_folder, prepare_tokenizer
from course_lib.profiles import Profile

BITS = (4, 8)  # what bitsandbytes can load weights in


def _check_bits(bits: int) -> None:
    if isinstance(bits, bool) or bits not in BITS:
        raise ValueError(
            f"bits={bits!r} is not supported: bitsandbytes loads weights in 4 bits (NF4) or 8 bits (LLM.int8). "
            "For 16 or 32 bits, load the model without quantisation: "
            "course_lib.models.load_model_and_tokenizer(profile) loads it in the profile's dtype."
        )


def bnb_config(
    profile: Profile,
    bits: int = 4,  # 4: NF4 weights (QLoRA), 8: LLM.int8 weights
    double_quant: bool = True,  # 4 bits only: quantise the block scales too (about 0.37 bit per weight saved)
) -> Any:
    """transformers' `BitsAndBytesConfig` for `profile`: NF4, double quantisation, the profile's dtype. Lesson 05a.

    The 4-bit weights are dequantised block by block to `bnb_4bit_compute_dtype` for every matrix product, so
    the computation runs in the profile's precision (float32 on the CPU, float16 on a T4, bfloat16 on an A100).
    """
    import torch
    from transformers import BitsAndBytesConfig

    _check_bits(bits)
    if bits == 8:
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",  # NormalFloat4: 16 levels at the quantiles of a normal distribution
        bnb_4bit_use_double_quant=double_quant,  # block scales in 8 bits, with one fp32 scale per 256 of them
        bnb_4bit_compute_dtype=getattr(torch, profile.dtype),  # precision of the matrix products
    )


def load_quantized(profile: Profile, bits: int = 4, double_quant: bool = True):
    """The profile's model with its linear layers in `bits` bits, and its tokenizer. Lesson 05a.

    Loads like `course_lib.models.load_model_and_tokenizer`: safetensors only, no `trust_remote_code`, the local
    tiny model offline. The layers bitsandbytes leaves alone (embeddings, norms, the output layer) stay in the
    profile's dtype. The model goes to the CPU for the `tiny` profile and to the GPU for the others.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = bnb_config(profile, bits=bits, double_quant=double_quant)
    settings: dict[str, Any] = dict(
        quantization_config=config,
        dtype=getattr(torch, profile.dtype),  # of the layers that stay unquantised
        device_map={"": "cuda" if profile.needs_cuda else "cpu"},  # bitsandbytes quantises while loading, on the device
        use_safetensors=True,
        trust_remote_code=False,
    )
    if profile.is_local_model:
        folder = profile.model_location
        check_model_folder(Path(folder))
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        try:
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, **settings)
        except Exception as err:
            raise ModelFileError(
                f"The model in {folder} cannot be loaded in {bits} bits: {err}. If the files are damaged, rebuild "
                f"them with `{REBUILD_COMMAND}`."
            ) from None
    else:
        tokenizer = AutoTokenizer.from_pretrained(profile.model, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(profile.model, **settings)
        for change in prepare_tokenizer(tokenizer):
            print(f"tokenizer: {change}")
    if bits == 4:
        _same_computation_on_every_cpu(model)
    model.eval()
    return model, tokenizer


def _same_computation_on_every_cpu(model: Any) -> None:
    """Keep every 4-bit layer of `model` computing as in training, on every CPU. Lessons 05a and 05b.

    On a CPU with AVX-512 bfloat16 instructions, bitsandbytes (0.50) repacks a `Linear4bit` the first time it runs
    for inference (eval mode, no gradients) for a faster kernel: the layer then keeps its block scales in bfloat16,
    without double quantisation, and multiplies in bfloat16, and it stays repacked, for training too. Other CPUs,
    and every CPU during training, dequantise the weights to the compute dtype and multiply in it (float32 on the
    tiny profile). The switch is bitsandbytes' per-layer flag `support_avx512bf16_for_cpu`, read in
    `Linear4bit.forward`; with it off, the lessons' numbers do not depend on the CPU. GPUs are not affected.
    """
    import bitsandbytes as bnb

    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit):
            module.support_avx512bf16_for_cpu = False


def _quantization_tensors(param: Any) -> list[Any]:
    """What bitsandbytes keeps beside a quantised weight: 4-bit block scales (nested ones too), 8-bit row scales."""
    tensors = []
    state = getattr(param, "quant_state", None)  # Params4bit
    while state is not None:
        tensors += [getattr(state, name, None) for name in ("absmax", "code", "offset")]
        state = getattr(state, "state2", None)  # double quantisation: the scales' own state
    tensors.append(getattr(param, "SCB", None))  # Int8Params: one fp32 scale per output row
    return [t for t in tensors if t is not None and hasattr(t, "untyped_storage")]


def footprint_bytes(model: Any) -> int:
    """Bytes of every distinct tensor `model` holds: parameters, buffers and bitsandbytes' scales. Lesson 05a.

    transformers' `model.get_memory_footprint()` counts parameters and buffers only, so for a 4-bit model it
    misses the block scales (about 1/8 bit per weight with double quantisation, 1/2 bit without). Tensors that
    share memory (tied embeddings, shared code tables) are counted once. Works on any `torch.nn.Module`.
    """
    storages: dict[tuple[str, int], int] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        for t in (tensor, *_quantization_tensors(tensor)):
            storage = t.untyped_storage()
            storages[(str(t.device), storage.data_ptr())] = storage.nbytes()
    return sum(storages.values())


class KeepTrainableFloat32(TrainerCallback):
    """Cast the trainable parameters back to float32 when training starts. Lesson 05b.

    TRL's `SFTTrainer` casts the trainable parameters of a 4- or 8-bit model to bfloat16 (the QLoRA paper's
    setting on GPUs). With this callback they stay in float32, as peft creates them and as the tiny profile
    computes. It also matters for resuming: reloading a checkpoint of bfloat16 adapters on a 4-bit model makes peft
    replace them with new float32 tensors that the optimiser does not hold, so the resumed run silently stops
    training them. The cast keeps the same parameter objects, so the optimiser (created just before) still
    updates them; its state is created at the first step, in float32.
    """

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        import torch

        for param in model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()


QUANTIZATION = {"bits": 4, "quant_type": "nf4", "double_quant": True}  # how lesson 05b's QLoRA base model is loaded


def qlora_settings(profile: Profile, train_rows: Sequence[dict], *, seed: int = 0,
                   max_steps: int | None = None) -> dict:
    """Everything that decides lesson 05b's QLoRA adapter: lesson 04's adapter settings and the 4-bit format.

    `max_steps` defaults to lesson 04's LoRA budget, which lesson 05b gives QLoRA so that the two differ only in the
    base model's precision.
    """
    settings = lora.lora_settings(profile, train_rows, seed=seed, max_steps=runs.step_budget(profile, "04", max_steps),
                                  lesson="05")
    return {"method": "qlora", **settings, **QUANTIZATION}


def load_qlora(profile: Profile, folder: str | Path):
    """The 4-bit base model, readied as for training, with the QLoRA adapter saved in `folder`; and the tokenizer."""
    from peft import PeftModel, prepare_model_for_kbit_training

    model, tokenizer = load_quantized(profile, bits=QUANTIZATION["bits"], double_quant=QUANTIZATION["double_quant"])
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return PeftModel.from_pretrained(model, str(folder)).eval(), tokenizer


def load_or_train(profile: Profile, train_rows: Sequence[dict], *, folder: str | Path, seed: int = 0,
                  max_steps: int | None = None, stop_at: int | None = None) -> runs.SavedRun:
    """Lesson 05b's QLoRA model from `folder` if its adapter was trained with the same settings; else train and save it.

    Training goes on from the last checkpoint of an interrupted run with the same settings (in `folder`'s parent,
    under `runs/`). With `stop_at`, a run that has to train stops at that step and saves a checkpoint, and a second
    call finishes it: on a CPU the whole run takes longer than one notebook cell may. The adapters stay in float32
    (`KeepTrainableFloat32`), so the resumed run keeps training them. The settings are `qlora_settings`'s.

    Returns a `runs.SavedRun`: the peft model in eval mode, or None when the run stopped at `stop_at`
    (`finished` is False); its message says what happened.
    """
    import shutil

    from peft import prepare_model_for_kbit_training

    wanted = qlora_settings(profile, train_rows, seed=seed, max_steps=max_steps)
    if stop_at is not None:
        whole_number("stop_at", stop_at, f"Pass the step to stop at, e.g. stop_at={max(1, wanted['max_steps'] // 2)}, "
                                         "or stop_at=None to train to the end.")

    def train_and_save(folder: Path) -> runs.SavedRun:
        run_dir = folder.parent / "runs"
        resume = runs.saved_with(run_dir, wanted) and runs.last_checkpoint(run_dir) is not None
        if not resume:  # checkpoints of other settings must not be resumed
            shutil.rmtree(run_dir, ignore_errors=True)
            run_dir.mkdir(parents=True)
            runs.write_settings(run_dir, wanted)
        model, tokenizer = load_quantized(profile, bits=QUANTIZATION["bits"], double_quant=QUANTIZATION["double_quant"])
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=profile.needs_cuda)
        callbacks: list[Any] = [KeepTrainableFloat32()]
        if stop_at is not None and stop_at < wanted["max_steps"]:
            callbacks.append(runs.StopAtStepCallback(stop_at))
        trainer = lora.fine_tune(model, tokenizer, profile, train_rows, lesson="05", output_dir=run_dir, seed=seed,
                                 max_steps=wanted["max_steps"], callbacks=callbacks, resume=resume)
        step = trainer.state.global_step
        began = "resumed from a checkpoint" if resume else "trained from the start"
        if step < wanted["max_steps"]:
            return runs.SavedRun(None, tokenizer, trained=True,
                            message=f"{began}, stopped at step {step} of {wanted['max_steps']}: call again to finish")
        lora.save_adapter(trainer.model, folder, wanted)
        shutil.rmtree(run_dir, ignore_errors=True)  # the checkpoints are not needed once the adapter is saved
        return runs.SavedRun(trainer.model, tokenizer, trained=True,
                             message=f"{began} to step {step}, saved to {folder}")

    return runs.saved_run(folder, wanted, load=lambda folder: load_qlora(profile, folder), train=train_and_save)
