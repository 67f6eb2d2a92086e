"""DeFormer (Cao et al., ACL 2020): decompose the lower k layers of a BERT so that question and passage are encoded
separately, then run the upper n-k layers over their concatenation.

Because the passage's lower-layer encoding no longer depends on the question, it can be computed once and cached;
answering a question then costs the question's lower layers plus the upper layers. As in the official code
(`models/ebert.py`), the passage's position ids restart at 0, so its encoding is the same whatever the question's
length. With `split_layer = 0` nothing is encoded separately and the model *is* the original BERT over
`[CLS] question [SEP] passage [SEP]` (positions continuing), which is how the fine-tuned baseline is trained: the
baseline is a DeFormer with k=0, and DeFormer is initialised from it by loading the same weights with k>0.

The layers are the backbone's own (`BertModel.embeddings`, `BertModel.encoder.layer[i]`), so any HF BERT checkpoint
works and the k=0 equivalence is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, BertConfig, BertModel, PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask
from transformers.utils import ModelOutput

from pairlib.core.backbone import config_settings, init_bert_weights, load_backbone, second_segment_type


class DeFormerConfig(BertConfig):
    """A BertConfig plus `split_layer` (k): layers [0, k) run on question and passage separately, and
    `passage_token_type`: the token type of the passage segment, the one the backbone's tokenizer gives a pair's
    second text (1 for BERT; 0 for XLM-R-style vocabularies such as me5-small's, whose pretraining never used
    type 1)."""

    model_type = "deformer"

    def __init__(self, split_layer: int = 0, passage_token_type: int = 1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.split_layer = split_layer
        self.passage_token_type = passage_token_type


@dataclass
class DeFormerOutput(ModelOutput):
    last_hidden_state: torch.Tensor | None = None  # (batch, question_len + passage_len, hidden)
    attention_mask: torch.Tensor | None = None  # the joint mask over the same positions
    question_length: int | None = None  # where the passage starts in the joint sequence
    upper_hidden_states: tuple[torch.Tensor, ...] | None = None  # outputs of layers k..n-1 (for the LRS loss)


class DeFormerPreTrainedModel(PreTrainedModel):
    config_class = DeFormerConfig
    base_model_prefix = "deformer"
    supports_gradient_checkpointing = False
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        init_bert_weights(module, self.config.initializer_range)

    @classmethod
    def from_backbone(cls, name: str = "minilm-l6", split_layer: int = 0, **config_kwargs):
        """A new model whose encoder holds a pretrained backbone's weights (the heads are freshly initialised)."""
        bert, tokenizer = load_backbone(name)
        settings = config_settings(bert.config)
        settings.update(passage_token_type=second_segment_type(tokenizer), **config_kwargs)
        model = cls(DeFormerConfig(split_layer=split_layer, **settings))
        model.deformer.bert.load_state_dict(bert.state_dict())
        return model


class DeFormerModel(DeFormerPreTrainedModel):
    def __init__(self, config: DeFormerConfig) -> None:
        super().__init__(config)
        if not 0 <= config.split_layer < config.num_hidden_layers:
            raise ValueError(f"split_layer must be in 0..{config.num_hidden_layers - 1} (it is the number of "
                             f"separately encoded lower layers), got {config.split_layer}")
        self.bert = BertModel(config, add_pooling_layer=False)
        self.post_init()

    @property
    def deformer(self) -> "DeFormerModel":  # so that from_backbone works on the bare model too
        return self

    @property
    def split_layer(self) -> int:
        return self.config.split_layer

    def _mask(self, hidden: torch.Tensor, attention_mask: torch.Tensor):
        return create_bidirectional_mask(config=self.config, inputs_embeds=hidden, attention_mask=attention_mask)

    def _layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor, start: int, stop: int,
                keep: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
        mask = self._mask(hidden, attention_mask)
        kept = []
        for layer in self.bert.encoder.layer[start:stop]:
            hidden = layer(hidden, mask)
            if keep:
                kept.append(hidden)
        return hidden, kept

    def encode_segment(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, segment: int) -> torch.Tensor:
        """One segment alone through the embeddings and lower layers: positions from 0, token type `segment`."""
        if self.split_layer == 0:
            raise ValueError("split_layer is 0: nothing is encoded separately (this is the original model)")
        types = torch.full_like(input_ids, segment)
        hidden = self.bert.embeddings(input_ids=input_ids, token_type_ids=types)
        return self._layers(hidden, attention_mask, 0, self.split_layer)[0]

    def encode_passage(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """What the passage cache stores: the passage's lower-layer output, independent of any question."""
        return self.encode_segment(input_ids, attention_mask, segment=self.config.passage_token_type)

    def encode_question(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The question's lower-layer output: what a scoring job caches per distinct query."""
        return self.encode_segment(input_ids, attention_mask, segment=0)

    def forward(self, question_input_ids: torch.Tensor | None = None,
                question_attention_mask: torch.Tensor | None = None,
                passage_input_ids: torch.Tensor | None = None, passage_attention_mask: torch.Tensor | None = None,
                passage_states: torch.Tensor | None = None, question_states: torch.Tensor | None = None,
                output_upper_hidden_states: bool = False, **_) -> DeFormerOutput:
        """Question `[CLS] q [SEP]` and passage `p [SEP]` (no [CLS]); pass `passage_states` from `encode_passage`
        (or a cache) instead of `passage_input_ids` to skip the passage's lower layers, and `question_states` from
        `encode_question` to skip the question's."""
        if passage_states is None and passage_input_ids is None:
            raise ValueError("give passage_input_ids or cached passage_states")
        if question_states is None and question_input_ids is None:
            raise ValueError("give question_input_ids or cached question_states")
        if passage_attention_mask is None or question_attention_mask is None:
            raise ValueError("both attention masks are needed, with token inputs or cached states")
        mask = torch.cat([question_attention_mask, passage_attention_mask], dim=1)
        q_len = question_attention_mask.shape[1]
        k = self.split_layer
        if k == 0:
            if passage_input_ids is None or question_input_ids is None:
                raise ValueError("split_layer is 0: there are no cached states to use")
            ids = torch.cat([question_input_ids, passage_input_ids], dim=1)
            types = torch.cat([torch.zeros_like(question_input_ids),
                               torch.full_like(passage_input_ids, self.config.passage_token_type)], dim=1)
            hidden = self.bert.embeddings(input_ids=ids, token_type_ids=types)
        else:
            q = question_states if question_states is not None else self.encode_question(question_input_ids,
                                                                                         question_attention_mask)
            p = passage_states if passage_states is not None else self.encode_passage(passage_input_ids,
                                                                                      passage_attention_mask)
            hidden = torch.cat([q, p.to(q.dtype)], dim=1)
        hidden, upper = self._layers(hidden, mask, k, self.config.num_hidden_layers, keep=output_upper_hidden_states)
        return DeFormerOutput(last_hidden_state=hidden, attention_mask=mask, question_length=q_len,
                              upper_hidden_states=tuple(upper) if output_upper_hidden_states else None)


class _WithDeFormer(DeFormerPreTrainedModel):
    """What every DeFormer task head shares, and what distillation asks of a head: the labels its loss reads
    (`label_names`, as Hugging Face's Trainer names them), the logits KD compares (`distilled_logits`), the mask over
    the joint `[question; passage]` rows LRS compares states under (`joint_attention_mask`), and how the upper
    layers' states of one training row are laid out (`states_per_example` / `states_per_row`)."""

    label_names: ClassVar[tuple[str, ...]] = ("labels",)

    def __init__(self, config: DeFormerConfig) -> None:
        super().__init__(config)
        self.deformer = DeFormerModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def encode_passage(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.deformer.encode_passage(input_ids, attention_mask)

    def distilled_logits(self, out: ModelOutput) -> torch.Tensor:
        """The distribution KD compares: the class logits."""
        return out.logits

    def joint_attention_mask(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The mask over the `[question; passage]` rows the encoder's upper layers run on."""
        return torch.cat([inputs["question_attention_mask"], inputs["passage_attention_mask"]], dim=1)

    def states_per_example(self, states: tuple[torch.Tensor, ...], examples: int) -> tuple[torch.Tensor, ...]:
        """Upper-layer states as kept per training example (one row each here)."""
        return tuple(states)

    def states_per_row(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        """Kept states back in the rows the encoder runs on."""
        return states


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    return None if labels is None else F.cross_entropy(logits, labels)


@dataclass
class SpanOutput(ModelOutput):
    loss: torch.Tensor | None = None  # with start and end positions: the mean of their cross-entropies
    start_logits: torch.Tensor | None = None  # over passage tokens only
    end_logits: torch.Tensor | None = None
    upper_hidden_states: tuple[torch.Tensor, ...] | None = None


class DeFormerForQuestionAnswering(_WithDeFormer):
    """Span QA: start and end logits over the passage's tokens (padding masked to -inf)."""

    label_names = ("start_positions", "end_positions")

    def __init__(self, config: DeFormerConfig) -> None:
        super().__init__(config)
        self.qa_outputs = nn.Linear(config.hidden_size, 2)
        self.post_init()

    def forward(self, start_positions: torch.Tensor | None = None, end_positions: torch.Tensor | None = None,
                **inputs) -> SpanOutput:
        out = self.deformer(**inputs)
        passage = out.last_hidden_state[:, out.question_length:]
        logits = self.qa_outputs(passage)
        pad = out.attention_mask[:, out.question_length:] == 0
        logits = logits.masked_fill(pad[..., None], torch.finfo(logits.dtype).min)
        start, end = logits[..., 0], logits[..., 1]
        loss = None
        if start_positions is not None and end_positions is not None:
            loss = (F.cross_entropy(start, start_positions) + F.cross_entropy(end, end_positions)) / 2
        return SpanOutput(loss=loss, start_logits=start, end_logits=end, upper_hidden_states=out.upper_hidden_states)

    def distilled_logits(self, out: SpanOutput) -> torch.Tensor:
        """Start and end logits as two rows: KD compares each distribution over the passage's tokens."""
        return torch.stack([out.start_logits, out.end_logits], dim=1)


@dataclass
class ClassifierOutput(ModelOutput):
    loss: torch.Tensor | None = None  # with labels: their cross-entropy
    logits: torch.Tensor | None = None
    upper_hidden_states: tuple[torch.Tensor, ...] | None = None


class DeFormerForSequenceClassification(_WithDeFormer):
    """Pair classification (BoolQ) from the question's [CLS]."""

    def __init__(self, config: DeFormerConfig) -> None:
        super().__init__(config)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, labels: torch.Tensor | None = None, **inputs) -> ClassifierOutput:
        out = self.deformer(**inputs)
        logits = self.classifier(self.dropout(out.last_hidden_state[:, 0]))
        return ClassifierOutput(loss=_cross_entropy(logits, labels), logits=logits,
                                upper_hidden_states=out.upper_hidden_states)


class DeFormerForMultipleChoice(_WithDeFormer):
    """Multiple choice (RACE): each option is a question segment `[CLS] question option [SEP]` over the same article,
    whose lower layers run once per example, not once per option.

    Inputs: question_input_ids / question_attention_mask of shape (batch, choices, q_len); passage inputs or
    states of shape (batch, p_len[, hidden]); logits of shape (batch, choices). The upper layers run on one row per
    option, so distillation keeps their states per question (`states_per_example`) and flattens them back.
    """

    def __init__(self, config: DeFormerConfig) -> None:
        super().__init__(config)
        self.classifier = nn.Linear(config.hidden_size, 1)
        self.post_init()

    def forward(self, question_input_ids: torch.Tensor, question_attention_mask: torch.Tensor,
                passage_input_ids: torch.Tensor | None = None, passage_attention_mask: torch.Tensor | None = None,
                passage_states: torch.Tensor | None = None, output_upper_hidden_states: bool = False,
                labels: torch.Tensor | None = None, **_) -> ClassifierOutput:
        b, c, q_len = question_input_ids.shape
        if passage_states is None and self.deformer.split_layer > 0:
            passage_states = self.encode_passage(passage_input_ids, passage_attention_mask)

        def per_choice(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.unsqueeze(1).expand(b, c, *t.shape[1:]).reshape(b * c, *t.shape[1:])

        out = self.deformer(question_input_ids.reshape(b * c, q_len), question_attention_mask.reshape(b * c, q_len),
                            passage_input_ids=per_choice(passage_input_ids) if passage_states is None else None,
                            passage_attention_mask=per_choice(passage_attention_mask),
                            passage_states=per_choice(passage_states),
                            output_upper_hidden_states=output_upper_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state[:, 0])).view(b, c)
        return ClassifierOutput(loss=_cross_entropy(logits, labels), logits=logits,
                                upper_hidden_states=out.upper_hidden_states)

    def joint_attention_mask(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One article per question, repeated for each option's row."""
        question, passage = inputs["question_attention_mask"], inputs["passage_attention_mask"]
        passage = passage.repeat_interleave(question.shape[1], dim=0)
        return torch.cat([question.flatten(0, 1), passage], dim=1)

    def states_per_example(self, states: tuple[torch.Tensor, ...], examples: int) -> tuple[torch.Tensor, ...]:
        """(questions x options, ...) -> (questions, options, ...): one entry per training row."""
        return tuple(h.unflatten(0, (examples, -1)) for h in states)

    def states_per_row(self, states: list[torch.Tensor]) -> list[torch.Tensor]:
        return [h.flatten(0, 1) for h in states]


AutoConfig.register("deformer", DeFormerConfig, exist_ok=True)
AutoModel.register(DeFormerConfig, DeFormerModel, exist_ok=True)
