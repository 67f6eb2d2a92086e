"""A saved pair-scoring model, split the way a cache serves it: what one text alone gives (encoded once per distinct
passage or query) and what each pair costs on top.

- DiPair (`dipair`): each side's kept, projected states; per pair, the head.
- DE-Cos / DE-FFNN (`pair-dual-encoder`): each side's pooled vector; per pair, the cosine (or the small FFNN).
- DeFormer (`deformer`, a pair classifier): each side's lower-layer states (the question as segment A, the passage
  as segment B, each alone); per pair, the upper layers and the classifier. The score is the log-odds of the
  positive class (or the one logit of a one-label model). At split 0 (the original model) nothing is cached.
- Cross-encoder (`pair-cross-encoder`): nothing can be computed per side; per pair, the whole encoder over
  `[CLS] query [SEP] passage [SEP]` (the reference every cached path is compared with).
- FastBERT (`fastbert`, a pair classifier): as a cross-encoder, each pair leaving at the first layer sure enough at
  the speed saved with the model.

Sides are returned as numpy arrays in the store's dtype (float16 by default: half the bytes, scores within about
1e-2 of float32), so that they can be written to disk and read back memory-mapped.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from pairlib.core.backbone import load_tokenizer, quiet_transformers
from pairlib.core.metrics import pair_scores
from pairlib.deformer.inputs import tokenize_segment, tokenize_segments
from pairlib.deformer.modeling import DeFormerForSequenceClassification
from pairlib.dipair.modeling import CrossEncoder, DiPairModel, DualEncoder, EncodedSide
from pairlib.fastbert.modeling import FastBertForSequenceClassification

# the model classes a saved folder's `model_type` loads as
MODEL_CLASSES = {"dipair": DiPairModel, "pair-dual-encoder": DualEncoder, "deformer": DeFormerForSequenceClassification,
                 "pair-cross-encoder": CrossEncoder, "fastbert": FastBertForSequenceClassification}
DTYPES = ("float16", "float32")
DEVICES = ("cpu", "cuda")
# used when the model's folder does not say (its training settings.json, one level up, usually does)
DEFAULT_LENGTHS = {"query_length": 32, "passage_length": 128, "cross_length": 160}


class ServeError(ValueError):
    """Bad input to a scoring job, found before any work starts; the message says what to do."""


def model_fingerprint(folder: Path) -> str:
    """Names the model a store was built by: its config and its weights, byte for byte."""
    h = hashlib.sha1()
    for path in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")) + [folder / "config.json"]:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def save_for_serving(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, folder: str | Path,
                     **lengths: int) -> Path:
    """A model ready for `pairlib score --model <folder>`: its weights, its tokenizer and the lengths it was trained
    with (`serving.json`)."""
    unknown = set(lengths) - set(DEFAULT_LENGTHS)
    if unknown:  # refused before anything is written
        raise ServeError(f"unknown length(s) {sorted(unknown)}; known: {sorted(DEFAULT_LENGTHS)}")
    folder = Path(folder)
    with quiet_transformers():
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "serving.json").write_text(json.dumps(lengths, indent=1) + "\n")
    return folder


def _training_settings(folder: Path) -> dict:
    """The lengths saved with a model for serving (`serving.json`), else the settings pairlib wrote beside a trained
    model (`<artifact>/settings.json`; the model is in `<artifact>/best`)."""
    for place in (folder / "serving.json", folder / "settings.json", folder.parent / "settings.json"):
        if place.is_file():
            return json.loads(place.read_text())
    return {}


@dataclass
class ServedModel:
    """A loaded model and how it splits into per-text work (`encode`) and per-pair work (`score`). One subclass per
    kind of model (`SERVED`, by the `model_type` a saved folder's config names)."""

    model: torch.nn.Module
    tokenizer: PreTrainedTokenizerBase
    fingerprint: str
    query_length: int
    passage_length: int
    cross_length: int
    dtype: str = "float16"
    device: str = "cpu"

    model_type: ClassVar[str]

    def to(self, device: str) -> "ServedModel":
        """The same model on `device` (`cpu` or `cuda`); stores stay numpy on the host either way."""
        check_device(device)
        self.model.to(device)
        self.device = device
        return self

    def _host(self, t: torch.Tensor, dtype: str | type) -> np.ndarray:
        return t.float().cpu().numpy().astype(dtype)

    def _tensor(self, a: np.ndarray, dtype) -> torch.Tensor:
        return torch.from_numpy(np.asarray(a, dtype=dtype)).to(self.device)

    def _tokens(self, texts: list[str], length: int) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, padding="max_length", truncation=True, max_length=length, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def side_length(self, side: str) -> int:
        return self.query_length if side == "query" else self.passage_length

    @property
    def caches_sides(self) -> bool:
        """Whether anything of one text alone can be computed once and kept (else a side is its text)."""
        return True

    @torch.inference_mode()
    def encode(self, side: str, texts: list[str]) -> dict[str, np.ndarray]:
        """What one side's texts give alone: the arrays a store keeps per text."""
        if not self.caches_sides:
            return {"text": np.asarray(texts, dtype=object)}
        return self._encode(side, texts)

    def _encode(self, side: str, texts: list[str]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    @torch.inference_mode()
    def score(self, query: dict[str, np.ndarray], passage: dict[str, np.ndarray]) -> np.ndarray:
        """Scores of aligned rows: query[i] with passage[i]."""
        return self._host(self._score(query, passage), np.float32)

    def _score(self, query: dict[str, np.ndarray], passage: dict[str, np.ndarray]) -> torch.Tensor:
        raise NotImplementedError


class ServedDiPair(ServedModel):
    """Each side's kept, projected states; per pair, the head."""

    model_type = "dipair"

    def _encode(self, side: str, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self._tokens(texts, self.side_length(side))
        encode = self.model.encode_query if side == "query" else self.model.encode_passage
        out = encode(enc["input_ids"], enc["attention_mask"])
        return {"states": self._host(out.states, self.dtype), "mask": self._host(out.mask, np.int8)}

    def _score(self, query, passage) -> torch.Tensor:
        def side(a):
            return EncodedSide(states=self._tensor(a["states"], np.float32), mask=self._tensor(a["mask"], np.int64))
        return self.model.score(side(query), side(passage))


class ServedDualEncoder(ServedModel):
    """Each side's pooled vector; per pair, the cosine (or the small FFNN)."""

    model_type = "pair-dual-encoder"

    def _encode(self, side: str, texts: list[str]) -> dict[str, np.ndarray]:
        enc = self._tokens(texts, self.side_length(side))
        encode = self.model.encode_query if side == "query" else self.model.encode_passage
        return {"vector": self._host(encode(enc["input_ids"], enc["attention_mask"]), self.dtype)}

    def _score(self, query, passage) -> torch.Tensor:
        return self.model.score(self._tensor(query["vector"], np.float32), self._tensor(passage["vector"], np.float32))


class ServedDeFormer(ServedModel):
    """Each side's lower-layer states, as DeFormer reads its segments (`[CLS] q [SEP]` and `p [SEP]`); per pair,
    the upper layers and the classifier. At split 0 (the original model) nothing is cached."""

    model_type = "deformer"

    @property
    def caches_sides(self) -> bool:
        return self.model.deformer.split_layer > 0

    def _encode(self, side: str, texts: list[str]) -> dict[str, np.ndarray]:
        if side == "query":
            ids, mask = tokenize_segment(self.tokenizer, texts, self.query_length, "question")
            encode = self.model.deformer.encode_question
        else:
            ids, mask = tokenize_segment(self.tokenizer, texts, self.passage_length, "passage")
            encode = self.model.encode_passage
        states = encode(ids.to(self.device), mask.to(self.device))
        return {"states": self._host(states, self.dtype), "mask": mask.numpy().astype(np.int8)}

    def _score(self, query, passage) -> torch.Tensor:
        if self.caches_sides:
            inputs = {"question_states": self._tensor(query["states"], np.float32),
                      "question_attention_mask": self._tensor(query["mask"], np.int64),
                      "passage_states": self._tensor(passage["states"], np.float32),
                      "passage_attention_mask": self._tensor(passage["mask"], np.int64)}
        else:
            inputs = {k: v.to(self.device) for k, v in tokenize_segments(
                self.tokenizer, list(query["text"]), list(passage["text"]), self.query_length,
                self.passage_length).items()}
        return pair_scores(self.model(**inputs).logits)


class ServedCrossEncoder(ServedModel):
    """Nothing can be computed per side; per pair, the whole encoder over `[CLS] query [SEP] passage [SEP]`."""

    model_type = "pair-cross-encoder"

    @property
    def caches_sides(self) -> bool:
        return False

    def side_length(self, side: str) -> int:
        return self.cross_length

    def _pairs(self, query, passage) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(list(query["text"]), list(passage["text"]), padding="max_length",
                             truncation="longest_first", max_length=self.cross_length, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def _score(self, query, passage) -> torch.Tensor:
        return self.model(**self._pairs(query, passage))


class ServedFastBert(ServedCrossEncoder):
    """FastBERT reads the pair as a cross-encoder does; each pair leaves at the first layer whose classifier is sure
    enough at the speed saved in its config (`config.speed`, set by `pairlib train fastbert --speed`)."""

    model_type = "fastbert"

    def _score(self, query, passage) -> torch.Tensor:
        return pair_scores(self.model.adaptive_predict(**self._pairs(query, passage),
                                                       speed=self.model.config.speed).logits)


SERVED: dict[str, type[ServedModel]] = {c.model_type: c for c in (ServedDiPair, ServedDualEncoder, ServedDeFormer,
                                                                   ServedCrossEncoder, ServedFastBert)}


def check_device(device: str, visible_here: bool = True) -> None:
    """A known device name, and (with `visible_here`) one this process can use."""
    if device not in DEVICES:
        raise ServeError(f"device must be one of {DEVICES}, got {device!r}")
    if visible_here and device == "cuda" and not torch.cuda.is_available():
        raise ServeError("device 'cuda' was asked for, but torch sees no CUDA GPU here: use --device cpu, or run on a "
                         "machine (or Ray workers) with a GPU and a CUDA build of torch")


def load_served_model(model_dir: str | Path, tokenizer: str | None = None, dtype: str = "float16",
                      device: str = "cpu", **lengths: int | None) -> ServedModel:
    """A saved model folder (a notebook's `<artifact>/best`, or any `save_pretrained` folder of the types above).
    The tokenizer and the lengths come from the folder, else from the training settings beside it, else from the
    arguments; anything still missing is an error that says which argument to give."""
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise ServeError(f"{folder} is not a saved model folder (no config.json): give the folder a notebook saved "
                         "(e.g. outputs/cpu/artifacts/<model>/best) or one written by save_pretrained")
    if dtype not in DTYPES:
        raise ServeError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    config = json.loads((folder / "config.json").read_text())
    model_type = config.get("model_type")
    if model_type not in SERVED:
        raise ServeError(f"{folder} holds a model of type {model_type!r}, which does not score pairs here; types "
                         f"that do: {', '.join(SERVED)} (DiPair, DE-Cos / DE-FFNN, DeFormer, cross-encoder, FastBERT)")
    labels = len(config.get("id2label") or {0: "LABEL_0", 1: "LABEL_1"})  # transformers' default is two
    if model_type == "deformer" and (config.get("architectures") != ["DeFormerForSequenceClassification"] or labels > 2):
        raise ServeError(f"{folder} holds a DeFormer {config.get('architectures')} with {labels} labels; one score "
                         "per pair needs a pair classifier (DeFormerForSequenceClassification) with one or two labels")
    if model_type == "fastbert" and labels > 2:
        raise ServeError(f"{folder} holds a FastBERT classifier with {labels} labels; one score per pair needs one or "
                         "two: evaluate it with `pairlib evaluate` instead")
    longest = int(config.get("max_position_embeddings", 512))
    for name, value in lengths.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= longest):
            raise ServeError(f"{name} must be a whole number from 1 to {longest} (the model's positions), got "
                             f"{value!r}; leave it out to use the length the model was trained with")
    settings = _training_settings(folder)
    # DeFormer's recipes name the query side `question_length`
    settings.setdefault("query_length", settings.get("question_length"))
    chosen = {k: next(v for v in (lengths.get(k), settings.get(k), DEFAULT_LENGTHS[k]) if v is not None)
              for k in DEFAULT_LENGTHS}
    if tokenizer is not None:
        tok = load_tokenizer(tokenizer)
    elif (folder / "tokenizer_config.json").is_file():
        tok = AutoTokenizer.from_pretrained(folder)
    elif "backbone" in settings:
        tok = load_tokenizer(str(settings["backbone"]).split("@")[0])
    else:
        raise ServeError(f"{folder} has no tokenizer and no training settings naming its backbone: pass --tokenizer "
                         "(e.g. minilm-l6)")
    with quiet_transformers():
        model = MODEL_CLASSES[model_type].from_pretrained(folder).eval()
    return SERVED[model_type](model, tok, model_fingerprint(folder), dtype=dtype, **chosen).to(device)
