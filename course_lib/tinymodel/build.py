"""Pretrain the course's tiny chat model from nothing: corpus, tokenizer, Llama model, training, probe, card.

Introduced in lesson 00. `python -m course_lib.tinymodel build` writes `data/models/tiny-chat`; the same
seed gives the same corpus, tokenizer and training order.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from course_lib.chat import render_chat
from course_lib.models import load_local_model
from course_lib.probe import probe
from course_lib.tinymodel import corpus
from course_lib.tinymodel.card import write_card
from course_lib.tinymodel.tokenizer import train_tokenizer


@dataclass(frozen=True)
class BuildConfig:
    """Everything the build depends on; the model card records it."""

    seed: int = 0  # seeds the corpus, the initial weights and the batch order
    corpus_scale: int = 900  # corpus size: this many copies of corpus.MIXTURE (about 108 documents each)
    vocab_size: int = 4096  # BPE vocabulary, special tokens included
    hidden_size: int = 192  # width of the residual stream
    num_layers: int = 6  # transformer blocks
    num_heads: int = 6  # query heads (head size = hidden_size / num_heads)
    num_kv_heads: int = 2  # key/value heads: grouped-query attention, 3 query heads share one
    intermediate_size: int = 512  # width of the SwiGLU feed-forward layer
    seq_len: int = 128  # tokens per training sequence (documents are packed back to back)
    batch_size: int = 16  # sequences per optimiser step
    max_steps: int = 2400  # optimiser steps
    lr: float = 2e-3  # peak learning rate
    min_lr: float = 1e-4  # learning rate at the end of the cosine decay
    warmup_steps: int = 200  # linear warm-up steps
    weight_decay: float = 0.1  # AdamW weight decay
    threads: int = 1  # CPU threads for torch; the result depends on it (float sums), so the default stays fixed
    probe_limit: int | None = None  # items per ability for the final probe; None asks all of them
    tickets_limit: int = 100  # gold-test tickets for the zero-shot probe


# The reduced build that tests run: same code path, a few seconds.
SMOKE = BuildConfig(
    corpus_scale=3, vocab_size=400, hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1, intermediate_size=64,
    seq_len=64, batch_size=4, max_steps=4, warmup_steps=2, threads=1, probe_limit=3, tickets_limit=3,
)


def model_config(config: BuildConfig, tokenizer):
    """The LlamaConfig of the tiny model: GQA, RoPE, SwiGLU, RMSNorm, tied input and output embeddings."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_heads,
        num_key_value_heads=config.num_kv_heads,
        max_position_embeddings=512,
        rope_theta=10_000.0,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def get_lr(step: int, config: BuildConfig) -> float:
    """Learning rate at `step`: 1) linear warm-up, 2) cosine decay to min_lr."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def pack(tokenizer, docs: list[str], seq_len: int):
    """All documents tokenized and concatenated, cut into rows of `seq_len` tokens (a LongTensor)."""
    import torch

    ids: list[int] = []
    for start in range(0, len(docs), 2048):
        for row in tokenizer(docs[start : start + 2048], add_special_tokens=False)["input_ids"]:
            ids.extend(row)
    rows = len(ids) // seq_len
    return torch.tensor(ids[: rows * seq_len], dtype=torch.long).view(rows, seq_len)


def build(config: BuildConfig, out_dir: Path, progress: bool = True) -> dict:
    """Build the tiny model into `out_dir` and return the build's measurements and probe scores."""
    import torch
    from tqdm.auto import tqdm
    from transformers import GenerationConfig, LlamaForCausalLM

    torch.set_num_threads(config.threads)
    out_dir = Path(out_dir)
    started = time.time()
    # 1) corpus and tokenizer
    docs = corpus.build_corpus(config.corpus_scale, seed=config.seed)
    tokenizer = train_tokenizer(docs, vocab_size=config.vocab_size)
    data = pack(tokenizer, docs, config.seq_len)
    # 2) a freshly initialised Llama model
    torch.manual_seed(config.seed)
    model = LlamaForCausalLM(model_config(config, tokenizer))
    n_params = sum(p.numel() for p in model.parameters())
    # 3) training: AdamW, warm-up then cosine decay, batches drawn from a seeded permutation of the rows
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.95),
    )
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(data), generator=generator)
    cursor = 0
    model.train()
    train_started = time.time()
    losses = []
    bar = tqdm(range(config.max_steps), desc="pretraining tiny-chat", disable=not progress, mininterval=2.0)
    for step in bar:
        if cursor + config.batch_size > len(order):
            order, cursor = torch.randperm(len(data), generator=generator), 0
        batch = data[order[cursor : cursor + config.batch_size]]
        cursor += config.batch_size
        for group in optimizer.param_groups:
            group["lr"] = get_lr(step, config)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if step % 10 == 0:
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.3f}")
    train_seconds = time.time() - train_started
    # 4) save in the transformers format, weights as safetensors
    model.eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        do_sample=False, max_new_tokens=64,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    # 5) probe the saved model and write the card
    scores = probe(out_dir, limit=config.probe_limit, tickets_limit=config.tickets_limit)
    stats = {
        "parameters": n_params,
        "corpus_documents": len(docs),
        "corpus_tokens": int(data.numel()),
        "trained_tokens": config.max_steps * config.batch_size * config.seq_len,
        "final_loss": round(sum(losses[-50:]) / len(losses[-50:]), 4),
        "train_seconds": round(train_seconds, 1),
        "tokens_per_second": round(config.max_steps * config.batch_size * config.seq_len / train_seconds, 1),
        "total_seconds": round(time.time() - started, 1),
        "weights_bytes": (out_dir / "model.safetensors").stat().st_size,
        "vocab_size": len(tokenizer),
        "load_and_generate_seconds": measure_latency(out_dir),
    }
    (out_dir / "build_stats.json").write_text(
        json.dumps({"config": asdict(config), "stats": stats, "probe": scores}, indent=2) + "\n", encoding="utf-8"
    )
    write_card(out_dir, config, stats, scores)
    return {"stats": stats, "probe": scores}


def measure_latency(folder: Path, new_tokens: int = 64) -> float:
    """Seconds to load the model from `folder` and generate exactly `new_tokens` tokens for one prompt, on the CPU."""
    import torch

    started = time.time()
    model, tokenizer = load_local_model(folder)
    prompt = render_chat([{"role": "user", "content": "Tell me about the capital of France."}],
                         add_generation_prompt=True)
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    with torch.no_grad():
        model.generate(**ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return round(time.time() - started, 3)


def smoke_config(**overrides) -> BuildConfig:
    """The reduced build for tests, with any field overridden."""
    return replace(SMOKE, **overrides)
