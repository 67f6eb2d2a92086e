"""FastBERT (Liu et al., ACL 2020): a classifier after every layer, self-distilled from the last, and adaptive
inference in which each sample leaves as soon as its classifier is sure enough.

The backbone is any HF BERT (its own `embeddings` and `encoder.layer[i]`), so with `speed=0` no sample exits early
and the prediction is exactly the teacher's (the last layer's classifier). Each classifier is the paper's branch:
FC to 128 with tanh, self-attention with 2 heads, FC 128 to 128 with tanh, FC to the classes on the first token
(the FC 128-128 runs on every token, as in the official code, so the analytic FLOPs match the paper's Table 1).

Adaptive inference is batched: after each layer the samples that exit are written out and dropped from the batch,
so the batch shrinks as it climbs (the official pip package cannot predict in batches). One sample at a time and
a batch give the same predictions and exit layers (tests/test_fastbert.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoConfig, BertConfig, BertModel, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import ModelOutput

from pairlib.core.backbone import config_settings, init_bert_weights, load_backbone
from pairlib.core.measure import bert_layer_flops, linear_flops


class FastBertConfig(BertConfig):
    model_type = "fastbert"

    def __init__(self, classifier_hidden: int = 128, classifier_heads: int = 2, branch_dropout: float = 0.1,
                 speed: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.classifier_hidden = classifier_hidden
        self.classifier_heads = classifier_heads
        self.branch_dropout = branch_dropout
        # the speed a saved model is served at (`pairlib score`, `pairlib evaluate`), chosen when it was trained
        # (`pairlib train fastbert --speed`); 0 runs every layer, as the teacher
        self.speed = speed


class FastBertBranch(nn.Module):
    """The paper's classifier: FC h->128 (tanh), self-attention (2 heads), FC 128->128 (tanh), FC 128->N on [CLS]."""

    def __init__(self, config: FastBertConfig) -> None:
        super().__init__()
        d = config.classifier_hidden
        self.input_dense = nn.Linear(config.hidden_size, d)
        self.attention = nn.MultiheadAttention(d, config.classifier_heads, dropout=config.branch_dropout,
                                               batch_first=True)
        self.hidden_dense = nn.Linear(d, d)
        self.dropout = nn.Dropout(config.branch_dropout)
        self.output = nn.Linear(d, config.num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.input_dense(hidden))
        x, _ = self.attention(x, x, x, key_padding_mask=attention_mask == 0, need_weights=False)
        x = torch.tanh(self.hidden_dense(x))
        return self.output(self.dropout(x[:, 0]))


@dataclass
class FastBertOutput(ModelOutput):
    logits: torch.Tensor | None = None  # the teacher's (last layer's) logits
    all_logits: tuple[torch.Tensor, ...] | None = None  # every layer's classifier, students first, teacher last


@dataclass
class AdaptivePrediction(ModelOutput):
    logits: torch.Tensor | None = None  # each sample's logits from the layer it exited at
    exit_layer: torch.Tensor | None = None  # 0-based index of that layer
    uncertainty: torch.Tensor | None = None  # its normalised entropy there


def normalised_entropy(logits: torch.Tensor) -> torch.Tensor:
    """The paper's uncertainty, sum p log p / log(1/N): 0 for a one-hot prediction, 1 for a uniform one."""
    n = logits.shape[-1]
    if n < 2:
        raise ValueError("uncertainty needs at least 2 classes")
    logp = torch.log_softmax(logits.float(), dim=-1)
    return (logp.exp() * logp).sum(-1) / math.log(1.0 / n)


class FastBertForSequenceClassification(PreTrainedModel):
    config_class = FastBertConfig
    base_model_prefix = "fastbert"
    _supports_sdpa = True

    def __init__(self, config: FastBertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.classifiers = nn.ModuleList(FastBertBranch(config) for _ in range(config.num_hidden_layers))
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        init_bert_weights(module, self.config.initializer_range)

    @classmethod
    def from_backbone(cls, name: str = "minilm-l6", num_labels: int = 2, num_layers: int | None = None,
                      **config_kwargs):
        """Pretrained encoder weights from a backbone (its first `num_layers` only, for the fixed-depth
        baselines), fresh classifiers."""
        bert, _ = load_backbone(name, num_layers=num_layers)
        settings = config_settings(bert.config)
        settings.update(config_kwargs, num_labels=num_labels)
        model = cls(FastBertConfig(**settings))
        model.bert.load_state_dict(bert.state_dict())
        return model

    @property
    def teacher_prefixes(self) -> tuple[str, ...]:
        """Parameters frozen while the students are distilled: the backbone and the last classifier."""
        return ("bert.", f"classifiers.{self.config.num_hidden_layers - 1}.")

    def _mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor):
        return create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, all_layers: bool = False, **_) -> FastBertOutput:
        """Every layer's hidden states through the backbone; the teacher's logits, and with `all_layers` every
        classifier's (for self-distillation)."""
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask = self._mask(hidden, attention_mask)
        last = self.config.num_hidden_layers - 1
        logits = []
        for i, layer in enumerate(self.bert.encoder.layer):
            hidden = layer(hidden, mask)
            if all_layers or i == last:
                logits.append(self.classifiers[i](hidden, attention_mask))
        return FastBertOutput(logits=logits[-1], all_logits=tuple(logits) if all_layers else None)

    @torch.inference_mode()
    def adaptive_predict(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         token_type_ids: torch.Tensor | None = None, speed: float = 0.5) -> AdaptivePrediction:
        """Layer by layer, a sample exits when its classifier's normalised entropy is below `speed`; the batch
        shrinks as samples exit. `speed=0` runs every sample to the last layer (the teacher)."""
        if not 0.0 <= speed <= 1.0:
            raise ValueError(f"speed must be in [0, 1], got {speed}")
        b = input_ids.shape[0]
        n_layers = self.config.num_hidden_layers
        out_logits = torch.zeros(b, self.config.num_labels, device=input_ids.device)
        exit_layer = torch.full((b,), n_layers - 1, dtype=torch.long, device=input_ids.device)
        out_u = torch.zeros(b, device=input_ids.device)
        active = torch.arange(b, device=input_ids.device)
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids)
        mask2d = attention_mask
        for i, layer in enumerate(self.bert.encoder.layer):
            hidden = layer(hidden, self._mask(hidden, mask2d))
            logits = self.classifiers[i](hidden, mask2d).float()
            u = normalised_entropy(logits)
            leave = torch.ones_like(u, dtype=torch.bool) if i == n_layers - 1 else u < speed
            if leave.any():
                rows = active[leave]
                out_logits[rows], out_u[rows], exit_layer[rows] = logits[leave], u[leave], i
                stay = ~leave
                active, hidden, mask2d = active[stay], hidden[stay], mask2d[stay]
            if active.numel() == 0:
                break
        return AdaptivePrediction(logits=out_logits, exit_layer=exit_layer, uncertainty=out_u)


def adaptive_from_all_layers(all_logits: torch.Tensor, speed: float) -> AdaptivePrediction:
    """What `adaptive_predict` returns, read off every classifier's logits on every sample, (layers, samples,
    classes): the same exit rule, so that one full pass serves a whole speed sweep instead of one adaptive pass per
    speed. A sample's layers do not depend on the other samples in its batch, so the two agree up to float rounding
    (tests/test_fastbert.py); wall-clock is still timed on `adaptive_predict` itself."""
    if not 0.0 <= speed <= 1.0:
        raise ValueError(f"speed must be in [0, 1], got {speed}")
    u = normalised_entropy(all_logits)  # (layers, samples)
    leave = u < speed
    leave[-1] = True  # the last layer takes whoever is left
    exit_layer = leave.int().argmax(0)  # the first layer each sample may leave at
    rows = torch.arange(all_logits.shape[1], device=all_logits.device)
    return AdaptivePrediction(logits=all_logits[exit_layer, rows].float(), exit_layer=exit_layer,
                              uncertainty=u[exit_layer, rows])


AutoConfig.register("fastbert", FastBertConfig, exist_ok=True)


# ----------------------------------------------------------------------------------------------------------------
# Cost


def branch_flops(seq_len: int, hidden: int, classifier_hidden: int = 128, num_labels: int = 2,
                 attention_matmuls: bool = False) -> int:
    """Analytic FLOPs (2 x MACs) of one classifier over one sequence. With `attention_matmuls=False` this is what
    `thop` counts, the paper's convention: 46.1M for BERT-base at length 128."""
    d = classifier_hidden
    flops = (linear_flops(seq_len, hidden, d) + 4 * linear_flops(seq_len, d, d)  # FC in; Q, K, V, out
             + linear_flops(seq_len, d, d) + linear_flops(1, d, num_labels))  # FC 128->128 on every token; out
    if attention_matmuls:
        flops += 2 * 2 * seq_len * seq_len * d
    return flops


def sample_flops(config: BertConfig, seq_len: int, exit_layer: int, classifier_hidden: int = 128,
                 attention_matmuls: bool = False) -> int:
    """FLOPs for one sample that exits after layer `exit_layer` (0-based): its layers and every classifier it
    passed through. `attention_matmuls=False` is the paper's convention (thop); True counts everything."""
    layer = bert_layer_flops(seq_len, config.hidden_size, config.intermediate_size, attention_matmuls)
    branch = branch_flops(seq_len, config.hidden_size, classifier_hidden, config.num_labels, attention_matmuls)
    return (exit_layer + 1) * (layer + branch)


def full_model_flops(config: BertConfig, seq_len: int, classifier_hidden: int = 128,
                     attention_matmuls: bool = False) -> int:
    """The fine-tuned backbone alone: every layer and only the last classifier (the paper's 'BERT' rows)."""
    layer = bert_layer_flops(seq_len, config.hidden_size, config.intermediate_size, attention_matmuls)
    return config.num_hidden_layers * layer + branch_flops(seq_len, config.hidden_size, classifier_hidden,
                                                           config.num_labels, attention_matmuls)
