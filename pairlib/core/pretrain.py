"""Masked-language-model pretraining of a small BERT from random weights.

FastBERT's paper reports six Chinese datasets on a Chinese BERT, and none can be downloaded here; the Chinese text
can. So a small BERT is pretrained on the **train splits** of the Chinese tasks (never a dev or test text: a text of
the same task's, or any other registered Chinese task's, dev or test split is dropped even when it also occurs in a
train split), with the bert-base-chinese vocabulary, transformers' `BertForMaskedLM` and its
`DataCollatorForLanguageModeling` (BERT's 80/10/10 masking), and pairlib's one training loop (resumable, bf16 where
the machine has it). FastBERT's claims are relative (accuracy kept at a speed, FLOPs saved), so a weaker backbone
still tests them.

Texts are packed as in transformers' `run_mlm.py`: tokenised, joined with [SEP], cut into blocks of
`block_length` tokens, so that no compute goes to padding (most texts here are a few dozen characters). A share of
the train texts (by hash) is held out to measure the MLM loss and the accuracy on masked tokens, masked once with a
fixed seed so that every evaluation scores the same positions.

A stopped run continues from its last checkpoint (`save_every_steps`). It does not continue bit for bit: Accelerate's
loader has already collated, and so masked, the batch after a checkpoint when the random state is saved, so the masks
drawn after a resume differ from an uninterrupted run's (tests/test_pretrain.py bounds the difference).

The result is saved as a Hugging Face model with its tokenizer (`save_pretrained`), so it loads as a backbone by
name (`pairlib.core.backbone`, `zh-mini`) or by folder.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, DataCollatorForLanguageModeling, PreTrainedTokenizerBase

from pairlib.core import data
from pairlib.core.artifacts import artifact_dir, replace_folder
from pairlib.core.backbone import chinese_tokenizer, quiet_transformers
from pairlib.core.recipe import RecipeBase
from pairlib.core.train import TensorDictDataset, TrainResult, seed_new_weights, train

ZH_TASKS = ("chnsenticorp", "book_review", "shopping", "lcqmc", "thucnews", "weibo")
HELD_OUT_SPLITS = ("validation", "test")


@dataclass(frozen=True)
class PretrainRecipe(RecipeBase):
    tasks: tuple | list = ZH_TASKS  # whose train splits make the corpus
    layers: int = 6
    hidden: int = 256
    heads: int = 4
    intermediate: int = 1024
    block_length: int = 128
    mlm_probability: float = 0.15
    heldout_percent: int = 2  # of the train texts (by hash), to measure the MLM loss on
    eval_blocks: int = 500
    max_blocks: int | None = None  # cap on the training blocks (smoke runs); None: the whole corpus
    epochs: int = 1
    lr: float = 5.0e-4
    batch_size: int = 64
    warmup_ratio: float = 0.05
    eval_every_steps: int | None = None  # a point of the curve every this many steps (besides each epoch's end)

    RUN_ONLY = ("save_every_steps", "eval_every_steps")

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "tasks", tuple(self.tasks))  # a YAML list names the same folder as a tuple
        for task in self.tasks:
            if data.get_task(task).language != "zh":
                raise ValueError(f"PretrainRecipe.tasks: {task!r} is not a Chinese task; Chinese tasks: "
                                 f"{', '.join(n for n, t in data.TASKS.items() if t.language == 'zh')}")
        if self.hidden % self.heads:
            raise ValueError(f"PretrainRecipe.hidden ({self.hidden}) must be a multiple of heads ({self.heads})")
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"PretrainRecipe.mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if not 0 < self.heldout_percent < 50:
            raise ValueError(f"PretrainRecipe.heldout_percent must be in 1..49, got {self.heldout_percent}")

    def bert_config(self, tokenizer: PreTrainedTokenizerBase) -> BertConfig:
        return BertConfig(vocab_size=len(tokenizer), hidden_size=self.hidden, num_hidden_layers=self.layers,
                          num_attention_heads=self.heads, intermediate_size=self.intermediate,
                          max_position_embeddings=max(self.block_length, 512),
                          pad_token_id=tokenizer.pad_token_id)


def task_texts(task: data.Task, split) -> list[str]:
    return [t for column in task.text_columns for t in split[column]]


def pretraining_texts(tasks: tuple[str, ...] = ZH_TASKS, heldout_percent: int = 2) -> tuple[list[str], list[str]]:
    """(train texts, held-out texts): the distinct texts of the tasks' train splits, less every text that occurs in
    a dev or test split of any registered Chinese task, split by a hash of the text."""
    zh = [name for name, t in data.TASKS.items() if t.language == "zh" and t.load_local is not None]
    evaluated: set[str] = set()
    for name in zh:
        dd = data.load_task(name)
        evaluated.update(t.strip() for s in HELD_OUT_SPLITS if s in dd for t in task_texts(data.get_task(name), dd[s]))
    seen: set[str] = set()
    train_texts, heldout = [], []
    for name in tasks:
        for text in task_texts(data.get_task(name), data.load_task(name, "train")):
            text = text.strip()
            if not text or text in seen or text in evaluated:
                continue
            seen.add(text)
            (heldout if data.hash_bucket(text) < heldout_percent else train_texts).append(text)
    return train_texts, heldout


def token_blocks(tokenizer: PreTrainedTokenizerBase, texts: list[str], block_length: int) -> torch.Tensor:
    """[blocks, block_length] token ids: [CLS] text [SEP] text [SEP] ... cut every `block_length - 2` tokens (the
    last, shorter block dropped)."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    stream = [tok for seq in ids for tok in (*seq, tokenizer.sep_token_id)]
    body = block_length - 2
    n = len(stream) // body
    blocks = torch.tensor(stream[: n * body], dtype=torch.long).view(n, body)
    cls = torch.full((n, 1), tokenizer.cls_token_id, dtype=torch.long)
    sep = torch.full((n, 1), tokenizer.sep_token_id, dtype=torch.long)
    return torch.cat([cls, blocks, sep], dim=1)


def mlm_loss(model: BertForMaskedLM, batch: dict, teacher=None) -> torch.Tensor:
    """Cross-entropy on the masked positions only: the vocabulary projection (21,128 outputs) is computed for the
    15% of tokens that are scored instead of all of them, which halves a small model's step."""
    labels = batch["labels"]
    masked = labels != -100
    hidden = model.bert(input_ids=batch["input_ids"]).last_hidden_state
    return F.cross_entropy(model.cls(hidden[masked]).float(), labels[masked])


@torch.no_grad()
def mlm_metrics(model: BertForMaskedLM, masked: dict[str, torch.Tensor], batch_size: int = 64) -> dict[str, float]:
    """Mean loss and accuracy over the masked tokens of fixed, already masked blocks."""
    model.eval()
    loss, correct, count = 0.0, 0, 0
    for i in range(0, len(masked["input_ids"]), batch_size):
        labels = masked["labels"][i:i + batch_size]
        keep = labels != -100
        hidden = model.bert(input_ids=masked["input_ids"][i:i + batch_size]).last_hidden_state
        logits = model.cls(hidden[keep]).float()
        loss += F.cross_entropy(logits, labels[keep], reduction="sum").item()
        correct += (logits.argmax(-1) == labels[keep]).sum().item()
        count += int(keep.sum())
    return {"mlm_loss": loss / max(count, 1), "masked_accuracy": correct / max(count, 1)}


class Pretraining:
    """One pretraining run: its corpus, its fixed held-out masking, the model trained (resumably) and saved as a
    backbone folder."""

    def __init__(self, recipe: PretrainRecipe, out_dir: str | Path, progress: bool = True) -> None:
        self.recipe, self.out_dir, self.progress = recipe, Path(out_dir), progress
        self.tokenizer = chinese_tokenizer()
        self.collator = DataCollatorForLanguageModeling(self.tokenizer, mlm_probability=recipe.mlm_probability)
        r = recipe
        self.train_texts, self.heldout_texts = pretraining_texts(r.tasks, r.heldout_percent)
        self.blocks = token_blocks(self.tokenizer, self.train_texts, r.block_length)
        if r.max_blocks is not None:
            self.blocks = self.blocks[torch.randperm(len(self.blocks), generator=torch.Generator().manual_seed(
                r.seed))[: r.max_blocks]]
        heldout = token_blocks(self.tokenizer, self.heldout_texts, r.block_length)[: r.eval_blocks]
        if len(self.blocks) == 0 or len(heldout) == 0:
            raise ValueError(f"the corpus of {r.tasks} gives {len(self.blocks)} training and {len(heldout)} held-out "
                             f"blocks of {r.block_length} tokens; use more tasks or a shorter block_length")
        with torch.random.fork_rng():  # the same positions masked at every evaluation and in every run
            torch.manual_seed(r.seed)
            self.heldout = self.collator([{"input_ids": b} for b in heldout])

    def corpus_summary(self) -> dict[str, int]:
        return {"train_texts": len(self.train_texts), "heldout_texts": len(self.heldout_texts),
                "train_blocks": len(self.blocks), "train_tokens": self.blocks.numel(),
                "heldout_blocks": len(self.heldout["input_ids"]),
                "heldout_masked_tokens": int((self.heldout["labels"] != -100).sum())}

    def heldout_metrics(self, model: BertForMaskedLM) -> dict[str, float]:
        return mlm_metrics(model, self.heldout)

    def new_model(self) -> BertForMaskedLM:
        seed_new_weights(self.recipe.seed)
        return BertForMaskedLM(self.recipe.bert_config(self.tokenizer))

    def run(self) -> tuple[BertForMaskedLM, TrainResult]:
        """Trains (or continues, or reloads the finished run) and returns the model with its record, whose
        `history` holds a point of the curve per evaluation."""
        r = self.recipe
        out = artifact_dir(self.out_dir, "pretrain-zh", r.model_settings())
        config = r.train_config(out, progress=self.progress, epochs=r.epochs, lr=r.lr,
                                eval_every_steps=r.eval_every_steps)
        model = self.new_model()
        result = train(model, TensorDictDataset({"input_ids": self.blocks}), self.collator, mlm_loss, config,
                       evaluate=self.heldout_metrics)
        with quiet_transformers():
            trained = BertForMaskedLM.from_pretrained(result.best_dir)
        return trained.eval(), result

    def save_backbone(self, model: BertForMaskedLM, folder: str | Path, record: dict | None = None) -> Path:
        """The model and its tokenizer in one folder, written whole (a kill leaves the previous one), with
        `pretraining.json` saying how it was made."""
        folder = Path(folder)
        tmp = folder.with_name(folder.name + ".tmp")
        with quiet_transformers():
            model.save_pretrained(tmp)
        self.tokenizer.save_pretrained(tmp)
        (tmp / "pretraining.json").write_text(json.dumps(
            {"recipe": self.recipe.model_settings(), "corpus": self.corpus_summary(), **(record or {})},
            indent=1, default=str) + "\n")
        replace_folder(tmp, folder)
        return folder
