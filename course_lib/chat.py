"""The tiny model's chat template and generation helpers.

Introduced in lesson 00. One function, `render_chat`, writes a conversation as text, for training and
for generation alike: the prompt for generation (`add_generation_prompt=True`) is exactly the start of the
training text of the same conversation with its answer, so the model sees at inference what it saw in
training. The same template is stored in the tokenizer (`CHAT_TEMPLATE`, Jinja), so
`tokenizer.apply_chat_template` gives identical text; lesson 03 uses its `{% generation %}` markers to
train on the assistant's tokens only, labelling every other token `IGNORE_INDEX`.

    <|bos|><|im_start|>system\\n...<|im_end|>\\n<|im_start|>user\\n...<|im_end|>\\n<|im_start|>assistant\\n...<|im_end|>\\n
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from course_lib.checks import whole_number

BOS = "<|bos|>"  # starts every sequence
EOS = "<|im_end|>"  # ends every turn; generation stops here
PAD = "<|pad|>"  # fills batches; never the same as EOS, so padding is never mistaken for an ending
START = "<|im_start|>"  # opens a turn, followed by the role
END_OF_TEXT = "<|endoftext|>"  # ends a plain-text (non-chat) document in the pretraining corpus
SPECIAL_TOKENS = (PAD, BOS, END_OF_TEXT, START, EOS)  # in id order: pad is 0
ROLES = ("system", "user", "assistant")
GENERATION_MARKER = re.compile(r"\{%-?\s*generation\s*-?%\}")  # `{% generation %}` in a chat template, any spacing
IGNORE_INDEX = -100  # the label of a token the loss skips: outside the `{% generation %}` spans, and padding

# ChatML with `{% generation %}` markers around each answer and its end-of-turn token. The tiny model's template
# starts with its BOS token; Hub models that speak ChatML (SmolLM2, Qwen2.5) get CHATML_TEMPLATE for training
# (course_lib.models.prepare_tokenizer), since their own templates carry no generation markers.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}"
    "{% else %}"
    "{{ message['content'] + '<|im_end|>' }}"
    "{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
CHAT_TEMPLATE = "{{ bos_token }}" + CHATML_TEMPLATE


def render_chat(messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    """The conversation as text, exactly as `CHAT_TEMPLATE` writes it; ends with an open assistant turn if asked."""
    parts = [BOS]
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise ValueError(f"message {i} has role {role!r}; the chat template knows only {', '.join(ROLES)}.")
        if not isinstance(content, str):
            raise ValueError(f"message {i} ({role}) has content of type {type(content).__name__}; it must be a string.")
        parts.append(f"{START}{role}\n{content}{EOS}\n")
    if add_generation_prompt:
        parts.append(f"{START}assistant\n")
    return "".join(parts)


# Prompts answered at once by `generate` and everything built on it (evaluation, baselines, behaviour tests, the
# local judge). A larger batch spreads each decoding step over more answers: on 2 CPU cores the tiny model answers
# 200 gold tickets in 7.9 s at 32 against 10.5 s at 16.
GENERATION_BATCH_SIZE = 32


def prompt_messages(user: str, system: str | None = None) -> list[dict]:
    """A one-turn conversation: an optional system message and the user's message."""
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]


def prompt_text(tokenizer, messages: Sequence[dict]) -> str:
    """The generation prompt for `messages`: `render_chat` for the course's template,
    else the tokenizer's own template."""
    template = getattr(tokenizer, "chat_template", None)
    if template and template != CHAT_TEMPLATE:
        return tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    return render_chat(messages, add_generation_prompt=True)


def prompt_conversations(prompts: Sequence[str | Sequence[dict]], system: str | None = None) -> list[list[dict]]:
    """Each prompt (a user message as text, or a conversation) as a conversation; `system` goes before each text prompt.

    A single string or a single conversation is an error, never answered once per character or once per message.
    """
    if isinstance(prompts, str):
        raise TypeError(f"prompts is one string ({prompts[:40]!r}), which would be answered once per character; "
                        "pass a list of prompts, e.g. [prompt].")
    prompts = list(prompts)
    if prompts and isinstance(prompts[0], dict):
        raise TypeError("prompts is one conversation (a list of messages), which would be answered once per message; "
                        "pass a list of conversations, e.g. [messages].")
    conversations = []
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, str):
            conversations.append(prompt_messages(prompt, system))
        elif isinstance(prompt, Sequence) and all(isinstance(m, dict) for m in prompt):
            conversations.append(list(prompt))
        else:
            raise TypeError(f"prompts[{i}] is a {type(prompt).__name__}: each prompt must be a user message (a string) "
                            "or a conversation (a list of {'role': ..., 'content': ...} messages).")
    return conversations


def generate_ids(
    model,
    tokenizer,
    prompts: Sequence[str | Sequence[dict]],
    max_new_tokens: int = 64,
    batch_size: int = GENERATION_BATCH_SIZE,
    system: str | None = None,
    temperature: float = 0.0,  # 0: greedy; above 0: sample from the model's distribution (seed torch first)
) -> list[tuple[list[int], bool]]:
    """Answers to `prompts` (user strings or conversations) as token ids cut before EOS, each with a flag:
    did it end with EOS?

    Greedy by default. With a temperature, each token is drawn from the whole softmax(logits / temperature), with
    no top-k or top-p cut, so the answers show how often the model would write each kind of answer.
    """
    import torch

    conversations = prompt_conversations(prompts, system)
    max_new_tokens = whole_number("max_new_tokens", max_new_tokens, "Pass the longest answer in tokens, e.g. 64.")
    batch_size = whole_number("batch_size", batch_size,
                              f"Pass the number of prompts answered at once, e.g. {GENERATION_BATCH_SIZE}.")
    texts = [prompt_text(tokenizer, c) for c in conversations]
    eos_id = tokenizer.eos_token_id
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos_id
    if eos_id is None:
        raise ValueError("the tokenizer has no EOS token, so generation could not stop; set tokenizer.eos_token.")
    if temperature < 0:
        raise ValueError(f"temperature must be 0 (greedy) or positive; got {temperature}")
    sampling = (dict(do_sample=True, temperature=temperature, top_k=0, top_p=1.0) if temperature > 0
                else dict(do_sample=False))
    device = next(model.parameters()).device
    results: list[tuple[list[int], bool]] = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts[start : start + batch_size]]
            width = max(len(x) for x in ids)
            # 1) left padding: every prompt ends at the same position, right where the answer starts
            input_ids = torch.tensor([[pad_id] * (width - len(x)) + x for x in ids], device=device)
            attention_mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=device)
            with torch.no_grad():
                out = model.generate(
                    input_ids=input_ids,
                    attention_mask=attention_mask,
                    max_new_tokens=max_new_tokens,
                    **sampling,
                    eos_token_id=eos_id,
                    pad_token_id=pad_id,
                )
            # 2) keep the new tokens up to, not including, the first EOS
            for row in out[:, width:].tolist():
                ended = eos_id in row
                results.append((row[: row.index(eos_id)] if ended else row, ended))
    finally:
        model.train(was_training)
    return results


def generate(
    model,
    tokenizer,
    prompts: Sequence[str | Sequence[dict]],
    max_new_tokens: int = 64,
    batch_size: int = GENERATION_BATCH_SIZE,
    system: str | None = None,
    temperature: float = 0.0,  # 0: greedy; above 0: sampled (see generate_ids)
) -> list[str]:
    """Answers to `prompts` (user strings or conversations) as text, batched with left padding, cut at EOS;
    greedy by default."""
    results = generate_ids(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size,
                           system=system, temperature=temperature)
    return [tokenizer.decode(ids, skip_special_tokens=True) for ids, _ in results]
