"""DeFormer's passage cache: each passage's layer-k states computed once (in memory, or on disk as safetensors) and
read back by id, named by a fingerprint of the lower layers they depend on."""
from __future__ import annotations

import os

import torch

from pairlib.core.artifacts import written_atomically
from pairlib.deformer.inputs import tokenize_segments
from pairlib.deformer.modeling import DeFormerPreTrainedModel


def lower_layers_fingerprint(model: DeFormerPreTrainedModel) -> str:
    """A hash of the weights a cached passage depends on (embeddings and the k lower layers)."""
    import hashlib
    base = model.deformer if hasattr(model, "deformer") else model
    h = hashlib.sha1(str(base.split_layer).encode())
    params = list(base.bert.embeddings.parameters()) + [p for layer in base.bert.encoder.layer[:base.split_layer]
                                                        for p in layer.parameters()]
    for p in params:
        h.update(p.detach().cpu().float().numpy().tobytes())
    return h.hexdigest()[:16]


def _padded(states: list[torch.Tensor], length: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.zeros(len(states), length, states[0].shape[-1], dtype=dtype)
    mask = torch.zeros(len(states), length, dtype=torch.long)
    for i, t in enumerate(states):
        out[i, : len(t)] = t.to(dtype)
        mask[i, : len(t)] = 1
    return out, mask


class PassageCache:
    """Passages encoded once up to layer k and stored on disk (safetensors, one tensor per passage, real tokens only).

    Answering from the cache runs only the question's lower layers and the upper layers. The cache records which
    weights it was built with and refuses a model whose lower layers differ. `dtype=torch.float16` halves the size
    (DeFormer's paper stores bf16); float32 keeps cached answers bit-identical to uncached ones.
    """

    def __init__(self, path: str, tensors: dict[str, torch.Tensor], fingerprint: str) -> None:
        self.path, self.tensors, self.fingerprint = path, tensors, fingerprint

    @classmethod
    def build(cls, model: DeFormerPreTrainedModel, tokenizer, passages: dict[str, str], path: str,
              passage_length: int, batch_size: int = 32, dtype: torch.dtype = torch.float32) -> "PassageCache":
        """Encode passage texts (id -> text), each truncated to `passage_length` tokens."""
        enc = tokenize_segments(tokenizer, [""] * len(passages), list(passages.values()), 2, passage_length)
        return cls.encode(model, list(passages), enc["passage_input_ids"], enc["passage_attention_mask"], path,
                          batch_size, dtype)

    @classmethod
    def from_inputs(cls, model: DeFormerPreTrainedModel, passage_ids: list[str], input_ids: torch.Tensor,
                    attention_mask: torch.Tensor, path: str, batch_size: int = 32,
                    dtype: torch.dtype = torch.float32) -> "PassageCache":
        """Encode already tokenised passage segments (e.g. SQuAD windows); repeated ids are encoded once."""
        first = {pid: i for i, pid in reversed(list(enumerate(passage_ids)))}
        index = torch.tensor(list(first.values()), dtype=torch.long)
        return cls.encode(model, list(first), input_ids[index], attention_mask[index], path, batch_size, dtype)

    @classmethod
    @torch.inference_mode()
    def encode(cls, model: DeFormerPreTrainedModel, ids: list[str], input_ids: torch.Tensor,
               attention_mask: torch.Tensor, path: str, batch_size: int = 32,
               dtype: torch.dtype = torch.float32) -> "PassageCache":
        from safetensors.torch import save_file
        model.eval()
        tensors: dict[str, torch.Tensor] = {}
        device = next(model.parameters()).device
        for start in range(0, len(ids), batch_size):
            mask = attention_mask[start:start + batch_size].to(device)
            states = model.encode_passage(input_ids[start:start + batch_size].to(device), mask)
            for pid, s, m in zip(ids[start:start + batch_size], states, mask):
                tensors[pid] = s[: int(m.sum())].to(dtype).cpu().contiguous()
        fingerprint = lower_layers_fingerprint(model)
        with written_atomically(path) as tmp:  # a kill while writing leaves no truncated cache to trust later
            save_file(tensors, str(tmp), metadata={"fingerprint": fingerprint,
                                                   "passage_length": str(input_ids.shape[1])})
        return cls(path, tensors, fingerprint)

    @classmethod
    def load(cls, path: str) -> "PassageCache":
        from safetensors import safe_open
        with safe_open(path, framework="pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            fingerprint = f.metadata()["fingerprint"]
        return cls(path, tensors, fingerprint)

    def check(self, model: DeFormerPreTrainedModel) -> None:
        if lower_layers_fingerprint(model) != self.fingerprint:
            raise ValueError(f"passage cache {self.path} was built with other lower-layer weights or another split "
                             "layer; rebuild it with PassageCache.build for this model")

    def batch(self, passage_ids: list[str], passage_length: int,
              dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """Cached states held in memory, padded to `passage_length`, and their attention mask, ready for
        `passage_states=`."""
        missing = [p for p in passage_ids if p not in self.tensors]
        if missing:
            raise KeyError(f"{len(missing)} passage(s) not in the cache {self.path}, e.g. {missing[:3]}")
        return _padded([self.tensors[p] for p in passage_ids], passage_length, dtype)

    def batch_from_disk(self, passage_ids: list[str], passage_length: int, dtype: torch.dtype = torch.float32,
                        cold: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The same batch read from the cache file, as a server whose cache does not fit in memory reads it.
        `cold=True` first asks the kernel to drop the file's pages from its page cache (posix_fadvise), so the read
        comes from the disk rather than from memory the kernel kept."""
        from safetensors import safe_open
        if cold:
            with open(self.path, "rb") as f:
                os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        with safe_open(self.path, framework="pt") as f:
            missing = [p for p in passage_ids if p not in self.tensors]
            if missing:
                raise KeyError(f"{len(missing)} passage(s) not in the cache {self.path}, e.g. {missing[:3]}")
            return _padded([f.get_tensor(p) for p in passage_ids], passage_length, dtype)

    @property
    def bytes_total(self) -> int:
        return sum(t.numel() * t.element_size() for t in self.tensors.values())

    @property
    def bytes_per_passage(self) -> float:
        return self.bytes_total / max(len(self.tensors), 1)

    @property
    def bytes_per_token(self) -> float:
        return self.bytes_total / max(sum(len(t) for t in self.tensors.values()), 1)
