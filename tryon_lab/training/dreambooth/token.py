"""The identifier token: a new word added to the tokenizer, its embedding started at the class word's.

DreamBooth binds one garment to a word the model has never seen ("sks"), used next to the class
word: "a photo of a person wearing a sks tee". The token is added as a whole word (it never
matches inside another word), the text encoder's embedding table grows by one row, and that row
starts at the mean embedding of the class word's pieces, so before training "sks tee" reads like
"tee tee" rather than like noise.
"""

from __future__ import annotations

import re

import torch
from tokenizers import AddedToken
from transformers import CLIPTextModel, CLIPTokenizer

from tryon_lab.errors import ConfigError

_TOKEN_PATTERN = re.compile(r"^[a-z0-9_]{2,24}$")


def check_token(tokenizer: CLIPTokenizer, token: str) -> None:
    """Raise ``ConfigError`` unless ``token`` can be an identifier: 2-24 lowercase letters, digits
    or ``_``, and not already a whole word of the tokenizer's vocabulary (added tokens are fine)."""
    if not isinstance(token, str) or not _TOKEN_PATTERN.match(token):
        raise ConfigError(f"identifier token {token!r} must be 2-24 lowercase letters, digits or '_' "
                          "(one word, e.g. 'sks')")
    if token in tokenizer.get_added_vocab():
        return
    if tokenizer.tokenize(token) == [f"{token}</w>"]:
        raise ConfigError(f"identifier token {token!r} is already a word the model knows; "
                          "pick a rare one such as 'sks' so it names only the fine-tuned item")


def ensure_token(tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, token: str) -> tuple[int, bool]:
    """Add ``token`` (a whole-word added token) if missing and grow the embedding table to match.

    Returns (token id, whether it was added now). A new row is left as ``resize_token_embeddings``
    made it; see ``add_identifier_token`` for the class-word initialisation.
    """
    check_token(tokenizer, token)
    added = False
    if token not in tokenizer.get_added_vocab():
        tokenizer.add_tokens([AddedToken(token, single_word=True, normalized=False)])
        added = True
    token_id = tokenizer.convert_tokens_to_ids(token)
    if text_encoder.get_input_embeddings().num_embeddings < len(tokenizer):
        text_encoder.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return token_id, added


def class_word_embedding(tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, class_word: str) -> torch.Tensor:
    """Mean input embedding (D,) of the pieces ``class_word`` tokenizes to."""
    ids = tokenizer(class_word, add_special_tokens=False).input_ids
    if not ids:
        raise ConfigError(f"class word {class_word!r} tokenizes to nothing")
    weight = text_encoder.get_input_embeddings().weight
    return weight[torch.tensor(ids, device=weight.device)].detach().mean(dim=0)


def add_identifier_token(tokenizer: CLIPTokenizer, text_encoder: CLIPTextModel, token: str, class_word: str) -> int:
    """Add ``token`` to ``tokenizer`` and ``text_encoder``; a new row starts at ``class_word``'s embedding.

    Idempotent: a token that is already there (a resumed run, a fine-tuned pipeline) keeps its
    row. Returns the token id.
    """
    init = class_word_embedding(tokenizer, text_encoder, class_word)
    token_id, added = ensure_token(tokenizer, text_encoder, token)
    if added:
        with torch.no_grad():
            text_encoder.get_input_embeddings().weight[token_id] = init
    return token_id


class TokenVector(torch.nn.Module):
    """The identifier's embedding as its own trainable parameter, for a frozen text encoder.

    A forward hook on the embedding table puts ``init + scale * delta`` wherever the token id
    occurs, so only D numbers train (not the whole table). ``scale`` = token learning rate /
    loop learning rate lets one optimizer give the token its own step size: Adam's step on
    ``delta`` is about the loop's rate whatever the gradient's size, and a gradient hook divides
    the gradient by ``scale`` so that clipping sees the token's natural gradient.
    """

    def __init__(self, text_encoder: CLIPTextModel, token_id: int, scale: float = 1.0):
        super().__init__()
        weight = text_encoder.get_input_embeddings().weight
        self.token_id, self.scale = int(token_id), float(scale)
        self.register_buffer("init", weight[self.token_id].detach().clone())
        self.delta = torch.nn.Parameter(torch.zeros_like(self.init))
        if self.scale != 1.0:
            self.delta.register_hook(lambda grad: grad / self.scale)
        self._handle = text_encoder.get_input_embeddings().register_forward_hook(self._replace)

    def vector(self) -> torch.Tensor:
        """The token's current embedding (D,)."""
        return self.init + self.scale * self.delta

    def _replace(self, module, args, output):
        hit = (args[0] == self.token_id).unsqueeze(-1)
        return torch.where(hit, self.vector().to(output.dtype), output)

    @torch.no_grad()
    def write_back(self, text_encoder: CLIPTextModel) -> None:
        """Copy the trained vector into the embedding table and remove the hook."""
        text_encoder.get_input_embeddings().weight[self.token_id] = self.vector()
        self._handle.remove()
