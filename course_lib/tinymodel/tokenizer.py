"""Train the tiny model's byte-level BPE tokenizer on its corpus. Introduced in lesson 00."""

from __future__ import annotations

from collections.abc import Iterable

from course_lib.chat import BOS, CHAT_TEMPLATE, EOS, PAD, SPECIAL_TOKENS


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096):
    """A byte-level BPE tokenizer for `texts`: any text encodes, digits split one by one, chat template attached."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # 1) split digits one by one, then the usual GPT-2 byte-level split into words, spaces and punctuation
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    # 2) learn merges; all 256 bytes are in the vocabulary, so no text is ever unknown
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # special tokens inside the corpus text are whole tokens, never merged into words
    tok.add_special_tokens(list(SPECIAL_TOKENS))
    tok.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        chat_template=CHAT_TEMPLATE,
        padding_side="left",  # generation pads on the left, so every prompt ends where its answer starts
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
