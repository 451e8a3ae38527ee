"""Write the tiny model's model card (README.md in its folder) from the build's own measurements."""

from __future__ import annotations

import platform
from pathlib import Path

from course_lib.tinymodel import corpus

# (probe key, what it measures, target); the targets come from the course design.
ABILITY_TARGETS = (
    ("fact_qa", "held-out fact questions answered correctly", ">= 0.90"),
    ("arithmetic", "held-out two-digit sums answered correctly", ">= 0.90"),
    ("refusal_unsafe", "held-out unsafe requests refused", ">= 0.90"),
    ("compliance_benign", "held-out benign look-alike requests answered, not refused", ">= 0.90"),
    ("zero_shot_json_valid", "gold-test tickets answered with schema-valid JSON, no fine-tuning", "<= 0.20"),
    ("eos_termination", "probe answers that end with EOS within 64 new tokens", ">= 0.99"),
    ("perplexity_heldout", "perplexity on held-out stories and support-desk prose", "reported"),
)


def write_card(folder: Path, config, stats: dict, scores: dict) -> Path:
    """Write `folder/README.md`: architecture, parameters, corpus, command, training time and probe scores."""
    items = {key: len(value) for key, value in corpus.probe_items().items()}
    if config.probe_limit is not None:
        items = {key: min(n, config.probe_limit) for key, n in items.items()}
    items["zero_shot_json_valid"] = config.tickets_limit
    items["eos_termination"] = sum(items[k] for k in ("fact_qa", "arithmetic", "refusal_unsafe", "compliance_benign",
                                                      "chat"))
    items["eos_termination"] += config.tickets_limit
    items["perplexity_heldout"] = config.probe_limit or 200
    rows = "\n".join(
        f"| `{key}` | {what} | {items[key]} | {scores[key]} | {target} |" for key, what, target in ABILITY_TARGETS
    )
    mixture = ", ".join(f"{kind} {count}" for kind, count in corpus.MIXTURE.items())
    head = config.hidden_size // config.num_heads
    text = f"""---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
---

# tiny-chat: the course's own pretrained chat model

A {stats['parameters'] / 1e6:.2f}M-parameter Llama model with a chat template, pretrained from nothing by this
course on a corpus it generates itself, so that every lesson runs offline on a CPU and fine-tuning has
real, measurable abilities to change. It is a teaching model: it knows a small invented-for-the-course
world (38 countries, 35 animals, 13 units), two-digit addition, small talk, polite refusals of one unsafe
category, generic JSON syntax, and how support agents talk. It cannot do the course's ticket-to-JSON task.

## Build it

    python -m course_lib.tinymodel build      # writes data/models/tiny-chat (this folder)
    python -m course_lib.tinymodel probe      # prints the scores below as one JSON object

Seeded (`seed={config.seed}`): the same command gives the same corpus, tokenizer, batch order and weights
on the same software. Measured on this build ({config.threads} CPU thread{'s' if config.threads > 1 else ''}, \
{platform.machine()} {platform.system()}):
{stats['train_seconds'] / 60:.1f} min of training and {stats['total_seconds'] / 60:.1f} min in all
(corpus, tokenizer, training, probe), {stats['tokens_per_second']:.0f} training tokens/s. Loading the model and
generating 64 tokens takes {stats['load_and_generate_seconds']:.2f} s on the CPU, once torch and transformers
are imported (a fresh Python process spends a few seconds more importing them).

## Architecture

`LlamaForCausalLM` (the module names of real Llama and Qwen models: `q_proj`, `k_proj`, `v_proj`, `o_proj`,
`gate_proj`, `up_proj`, `down_proj`).

| setting | value |
| --- | --- |
| parameters | {stats['parameters']:,} |
| layers | {config.num_layers} |
| hidden size | {config.hidden_size} |
| attention | {config.num_heads} query heads, {config.num_kv_heads} key/value heads (grouped-query), \
head size {head}, RoPE |
| feed-forward | SwiGLU, {config.intermediate_size} wide |
| embeddings | tied input and output, vocabulary {stats['vocab_size']:,} |
| weights | float32, safetensors, {stats['weights_bytes'] / 1e6:.1f} MB |

Tokenizer: byte-level BPE trained on the corpus (every text encodes; digits are split one by one).
Special tokens: `<|pad|>` (padding, id 0, distinct from EOS), `<|bos|>`, `<|endoftext|>` (ends plain
documents), `<|im_start|>`, `<|im_end|>` (EOS: ends every chat turn). Chat template
(`course_lib.chat.render_chat`, the same text as `tokenizer.apply_chat_template`):

    <|bos|><|im_start|>user\\nWhat is 12 + 30?<|im_end|>\\n<|im_start|>assistant\\n12 + 30 = 42.<|im_end|>\\n

## Training

{stats['trained_tokens']:,} tokens: {config.max_steps} steps of {config.batch_size} sequences x {config.seq_len} tokens,
packed from {stats['corpus_documents']:,} generated documents ({stats['corpus_tokens']:,} tokens). AdamW (betas
0.9/0.95, weight decay {config.weight_decay}), peak learning rate {config.lr}, {config.warmup_steps} warm-up steps,
cosine decay to {config.min_lr}, gradient clipping 1.0. Final training loss {stats['final_loss']}.

Corpus (`course_lib.tinymodel.corpus`, written from the tables in `course_lib.tinymodel.world`), documents
of each kind per {sum(corpus.MIXTURE.values())}: {mixture}. Chat documents use the chat template; \
prose documents are wrapped
in `<|bos|>` ... `<|endoftext|>`. The support-desk part holds customer messages and plain-language agent
replies, never the ticket-to-JSON task, and none of the messages in `data/tickets/`.

## Measured abilities (held-out items)

| probe | what it measures | items | score | target |
| --- | --- | --- | --- | --- |
{rows}

What "held out" means here, honestly: the model saw every fact in training, in prose and in most
question phrasings; the probe asks each fact in one phrasing that never appeared with that fact
(it did appear with other facts). Addition: the probe's operand pairs (about 10% of all two-digit pairs)
never appear in training. Refusal and compliance: each request appears in training in five of seven
phrasings; the probe uses the other two. Perplexity: stories and support-desk prose drawn from another
seed, with held-out sums. Zero-shot JSON: the first {config.tickets_limit} gold-test tickets, \
with the task's system prompt.

## Limitations

It knows only its small world, adds only two-digit numbers, and refuses only the one unsafe category it was
shown (instructions to hurt people or animals, make weapons or poisons, or break into others' homes, cars or
accounts), by recognising phrasings much like those in training. Outside its world it guesses with confidence:
one- or three-digit sums come out wrong, unfamiliar requests ("write a poem", "kill a python process") often
get a refusal, and questions it cannot place get an answer about something it knows. Asked to triage a ticket,
it answers like a support agent, in plain words, not in JSON. Do not use it for anything but learning.
"""
    path = Path(folder) / "README.md"
    path.write_text(text, encoding="utf-8")
    return path
