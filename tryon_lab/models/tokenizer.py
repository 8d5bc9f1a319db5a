"""A CLIP BPE tokenizer trained on the world's captions.

The result is a plain ``CLIPTokenizer`` folder (``vocab.json`` + ``merges.txt``), laid out like
CLIP's own: every byte symbol with and without the ``</w>`` end-of-word suffix first (so no word
is ever unknown), then one token per learned merge, then the two special tokens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from tokenizers import pre_tokenizers
from transformers import CLIPTokenizer

from tryon_lab.paths import write_text_atomically

END_OF_WORD = "</w>"
BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def _byte_symbols() -> list[str]:
    return sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda s: ord(s))


def train_tokenizer(
    captions: Iterable[str], out_dir: str | os.PathLike, *, vocab_size: int = 1024, max_length: int = 32
) -> CLIPTokenizer:
    """Train BPE merges on ``captions`` and write a CLIPTokenizer folder to ``out_dir``.

    Takes an iterable of caption strings; returns the tokenizer loaded back from ``out_dir``.
    """
    # CLIPTokenizer() with no vocab is an empty BPE with CLIP's normalizer and pre-tokenizer,
    # so training through it learns merges over exactly the pieces CLIP will see.
    trained = CLIPTokenizer().train_new_from_iterator(
        captions, vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    model_state = json.loads(trained.backend_tokenizer.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model_state["merges"]]

    symbols = _byte_symbols()
    vocab_tokens = symbols + [s + END_OF_WORD for s in symbols]
    seen = set(vocab_tokens)
    for merge in merges:
        token = merge.replace(" ", "")
        if token not in seen:
            seen.add(token)
            vocab_tokens.append(token)
    vocab_tokens += [BOS, EOS]
    vocab = {token: i for i, token in enumerate(vocab_tokens)}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out_dir / "vocab.json", json.dumps(vocab, ensure_ascii=False))
    write_text_atomically(out_dir / "merges.txt", "#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(out_dir, model_max_length=max_length)
    tokenizer.save_pretrained(out_dir)  # adds tokenizer_config.json (max length, specials)
    return tokenizer

