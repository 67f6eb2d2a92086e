"""DiPair (Chen et al., Findings of EMNLP 2020): dual encoders whose outputs can be cached, and a tiny head that
lets the two texts attend to each other.

Each encoder reads its text alone (so passages, and repeated queries, are encoded once and cached). The head keeps
the first m tokens of the query's output sequence and the first n of the passage's, projects each to d', adds
position and segment embeddings over the m+n tokens, and runs a small transformer (L_h layers of width d') or an
FFNN; the first token gives the score. Scoring from cached states costs only the head, which is where the paper's
>350x speedup over a cross-encoder comes from.

Also here, the models the paper compares with: the cross-encoder teacher (and small cross-encoders), and dual
encoders scored by the cosine of mean-pooled embeddings (DE-Cos) or by an FFNN over the two embeddings (DE-FFNN).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, BertConfig, BertModel, PreTrainedModel
from transformers.utils import ModelOutput

from pairlib.core.backbone import config_settings, init_bert_weights, load_backbone

HEAD_TYPES = ("transformer", "ffnn")
# DiPair's own config fields (m, n, d', L_h and the rest), beyond the backbone's
DIPAIR_SETTINGS = ("query_tokens", "passage_tokens", "head_dim", "head_layers", "head_heads", "head_type",
                   "shared_encoders", "head_norm_first")


class DiPairConfig(BertConfig):
    model_type = "dipair"

    def __init__(self, query_tokens: int = 4, passage_tokens: int = 16, head_dim: int = 128, head_layers: int = 1,
                 head_heads: int = 4, head_type: str = "transformer", shared_encoders: bool = True,
                 head_norm_first: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if head_type not in HEAD_TYPES:
            raise ValueError(f"head_type must be one of {HEAD_TYPES}, got {head_type!r}")
        if min(query_tokens, passage_tokens, head_dim, head_layers, head_heads) < 1:
            raise ValueError("query_tokens, passage_tokens, head_dim, head_layers and head_heads must all be >= 1")
        if head_type == "transformer" and head_dim % head_heads:
            raise ValueError(f"head_dim {head_dim} must be divisible by head_heads {head_heads}")
        self.query_tokens, self.passage_tokens = query_tokens, passage_tokens
        self.head_dim, self.head_layers, self.head_heads = head_dim, head_layers, head_heads
        self.head_type, self.shared_encoders = head_type, shared_encoders
        # pre-LN (a LayerNorm before each sublayer and one at the end): trained from scratch on a few thousand
        # pool pairs, the post-LN head fitted the teacher's scores far worse (an earlier run of stage 1 on kept states:
        # train MSE 0.15 vs 0.09, test AUC 0.71 vs 0.76; docs/dipair.md)
        self.head_norm_first = head_norm_first


@dataclass
class EncodedSide(ModelOutput):
    states: torch.Tensor | None = None  # (batch, kept tokens, head_dim): projected, what a cache stores
    mask: torch.Tensor | None = None  # (batch, kept tokens)


class DiPairHead(nn.Module):
    """Over the concatenated truncated, projected states: a transformer (or an FFNN) and a score from token 0."""

    def __init__(self, config: DiPairConfig) -> None:
        super().__init__()
        d, length = config.head_dim, config.query_tokens + config.passage_tokens
        self.type = config.head_type
        self.positions = nn.Embedding(length, d)
        self.segments = nn.Embedding(2, d)
        self.norm = nn.LayerNorm(d)
        if self.type == "transformer":
            pre_ln = config.head_norm_first
            layer = nn.TransformerEncoderLayer(d, config.head_heads, 4 * d, dropout=config.hidden_dropout_prob,
                                               activation="gelu", batch_first=True, norm_first=pre_ln)
            self.body = nn.TransformerEncoder(layer, config.head_layers, enable_nested_tensor=False,
                                              norm=nn.LayerNorm(d) if pre_ln else None)
            self.score = nn.Linear(d, 1)
        else:
            self.body = nn.Sequential(nn.Linear(length * d, 4 * d), nn.GELU(), nn.Dropout(config.hidden_dropout_prob))
            self.score = nn.Linear(4 * d, 1)
        self.query_tokens = config.query_tokens

    def forward(self, query: EncodedSide, passage: EncodedSide) -> torch.Tensor:
        x = torch.cat([query.states, passage.states], dim=1)
        mask = torch.cat([query.mask, passage.mask], dim=1)
        seg = torch.zeros(x.shape[1], dtype=torch.long, device=x.device)
        seg[self.query_tokens:] = 1
        x = self.norm(x + self.positions.weight[None, : x.shape[1]] + self.segments(seg)[None])
        if self.type == "transformer":
            x = self.body(x, src_key_padding_mask=mask == 0)
            return self.score(x[:, 0]).squeeze(-1)
        x = x * mask[..., None].to(x.dtype)
        return self.score(self.body(x.flatten(1))).squeeze(-1)


class _PairPreTrained(PreTrainedModel):
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        init_bert_weights(module, self.config.initializer_range)



class TwoEncoderModel(_PairPreTrained):
    """A query encoder and a passage encoder (one module when shared), each reading its text alone."""

    @classmethod
    def from_backbone(cls, name: str = "minilm-l6", **config_kwargs):
        """Both encoders start from the backbone's weights; the head and projections are new."""
        bert, _ = load_backbone(name)
        settings = config_settings(bert.config)
        settings.update(config_kwargs)
        model = cls(cls.config_class(**settings))
        model.query_encoder.load_state_dict(bert.state_dict())
        if not model.config.shared_encoders:
            model.passage_encoder.load_state_dict(bert.state_dict())
        return model

    def _encoders(self, config) -> None:
        self.query_encoder = BertModel(config, add_pooling_layer=False)
        if not config.shared_encoders:  # shared weights are one module, registered once
            self.separate_passage_encoder = BertModel(config, add_pooling_layer=False)

    @property
    def passage_encoder(self) -> BertModel:
        return self.query_encoder if self.config.shared_encoders else self.separate_passage_encoder

    @property
    def encoder_prefixes(self) -> tuple[str, ...]:
        """Parameter-name prefixes of the pretrained encoders (frozen in DiPair's first training stage)."""
        return ("query_encoder.",) if self.config.shared_encoders else ("query_encoder.", "separate_passage_encoder.")


class DiPairModel(TwoEncoderModel):
    config_class = DiPairConfig
    base_model_prefix = "dipair"

    def __init__(self, config: DiPairConfig) -> None:
        super().__init__(config)
        self._encoders(config)
        self.query_projection = nn.Linear(config.hidden_size, config.head_dim)
        self.passage_projection = nn.Linear(config.hidden_size, config.head_dim)
        self.head = DiPairHead(config)
        self.post_init()

    @property
    def new_layer_prefixes(self) -> tuple[str, ...]:
        """Parameter-name prefixes of the layers the backbone does not have (they start untrained)."""
        return ("query_projection.", "passage_projection.", "head.")

    def kept_states(self, side: str, input_ids: torch.Tensor,
                    attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The first m (query) or n (passage) output states and their mask, before projection. Stage 1 trains on
        these computed once, since the encoders are frozen there."""
        encoder, keep = ((self.query_encoder, self.config.query_tokens) if side == "query"
                         else (self.passage_encoder, self.config.passage_tokens))
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        states, mask = hidden[:, :keep], attention_mask[:, :keep]
        if states.shape[1] < keep:  # a text shorter than the kept length: pad with masked zeros
            pad = keep - states.shape[1]
            states = F.pad(states, (0, 0, 0, pad))
            mask = F.pad(mask, (0, pad))
        return states, mask

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncodedSide:
        states, mask = self.kept_states("query", input_ids, attention_mask)
        return EncodedSide(states=self.query_projection(states), mask=mask)

    def encode_passage(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> EncodedSide:
        states, mask = self.kept_states("passage", input_ids, attention_mask)
        return EncodedSide(states=self.passage_projection(states), mask=mask)

    def score(self, query: EncodedSide, passage: EncodedSide) -> torch.Tensor:
        """The head alone, from (cached) encoded sides: what DiPair's speedup measures."""
        return self.head(query, passage)

    def forward(self, query_input_ids: torch.Tensor, query_attention_mask: torch.Tensor,
                passage_input_ids: torch.Tensor, passage_attention_mask: torch.Tensor, **_) -> torch.Tensor:
        return self.score(self.encode_query(query_input_ids, query_attention_mask),
                          self.encode_passage(passage_input_ids, passage_attention_mask))


class DualEncoderConfig(BertConfig):
    model_type = "pair-dual-encoder"

    def __init__(self, scorer: str = "cosine", shared_encoders: bool = True, ffnn_dim: int = 256, **kwargs) -> None:
        super().__init__(**kwargs)
        if scorer not in ("cosine", "ffnn"):
            raise ValueError(f"scorer must be 'cosine' or 'ffnn', got {scorer!r}")
        self.scorer, self.shared_encoders, self.ffnn_dim = scorer, shared_encoders, ffnn_dim


class DualEncoder(TwoEncoderModel):
    """DE-Cos (cosine of mean-pooled embeddings, scaled to the teacher's logit range) or DE-FFNN (an FFNN over
    [u, v, |u - v|, u * v])."""

    config_class = DualEncoderConfig
    base_model_prefix = "dual_encoder"

    def __init__(self, config: DualEncoderConfig) -> None:
        super().__init__(config)
        self._encoders(config)
        h = config.hidden_size
        if config.scorer == "cosine":
            self.scale = nn.Parameter(torch.tensor(10.0))
            self.bias = nn.Parameter(torch.tensor(0.0))
        else:
            self.ffnn = nn.Sequential(nn.Linear(4 * h, config.ffnn_dim), nn.GELU(), nn.Linear(config.ffnn_dim, 1))
        self.post_init()

    @property
    def new_layer_prefixes(self) -> tuple[str, ...]:
        """Parameter-name prefixes of the layers the backbone does not have (they start untrained)."""
        return ("scale", "bias") if self.config.scorer == "cosine" else ("ffnn.",)

    @torch.no_grad()
    def calibrate(self, cosines: torch.Tensor, targets: torch.Tensor) -> None:
        """DE-Cos's scale and bias set by least squares so that `scale * cosine + bias` fits the teacher's logits:
        started at 10 and 0 against logits of another range and offset, the encoders bend to absorb the gap."""
        if self.config.scorer != "cosine":
            raise ValueError("calibrate applies to the cosine scorer only")
        x = torch.stack([cosines.double(), torch.ones_like(cosines, dtype=torch.float64)], dim=1)
        scale, bias = torch.linalg.lstsq(x, targets.double()[:, None]).solution[:, 0].tolist()
        self.scale.fill_(scale)
        self.bias.fill_(bias)

    @staticmethod
    def _pool(encoder: BertModel, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        m = attention_mask[..., None].to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._pool(self.query_encoder, input_ids, attention_mask)

    def encode_passage(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self._pool(self.passage_encoder, input_ids, attention_mask)

    def score(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        if self.config.scorer == "cosine":
            return self.scale * F.cosine_similarity(u, v, dim=-1) + self.bias
        return self.ffnn(torch.cat([u, v, (u - v).abs(), u * v], dim=-1)).squeeze(-1)

    def forward(self, query_input_ids: torch.Tensor, query_attention_mask: torch.Tensor,
                passage_input_ids: torch.Tensor, passage_attention_mask: torch.Tensor, **_) -> torch.Tensor:
        return self.score(self.encode_query(query_input_ids, query_attention_mask),
                          self.encode_passage(passage_input_ids, passage_attention_mask))


AutoConfig.register("dipair", DiPairConfig, exist_ok=True)
AutoConfig.register("pair-dual-encoder", DualEncoderConfig, exist_ok=True)


class CrossEncoderConfig(BertConfig):
    model_type = "pair-cross-encoder"


class CrossEncoder(_PairPreTrained):
    """The teacher (and the small cross-encoder baselines): `[CLS] query [SEP] passage [SEP]` through the whole
    encoder, a score from [CLS]. Every pair costs a full forward pass, which is what DiPair avoids."""

    config_class = CrossEncoderConfig
    base_model_prefix = "cross_encoder"

    def __init__(self, config: CrossEncoderConfig) -> None:
        super().__init__(config)
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.score = nn.Linear(config.hidden_size, 1)
        self.post_init()

    @property
    def new_layer_prefixes(self) -> tuple[str, ...]:
        """Parameter-name prefixes of the layers the backbone does not have (they start untrained)."""
        return ("score.",)

    @classmethod
    def from_backbone(cls, name: str = "minilm-l6", num_layers: int | None = None, **config_kwargs):
        """The backbone's first `num_layers` layers (all by default) and a new scoring layer."""
        bert, _ = load_backbone(name, num_layers=num_layers)
        settings = config_settings(bert.config)
        settings.update(config_kwargs)
        model = cls(CrossEncoderConfig(**settings))
        model.encoder.load_state_dict(bert.state_dict())
        return model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, **_) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        return self.score(self.dropout(hidden[:, 0])).squeeze(-1)


AutoConfig.register("pair-cross-encoder", CrossEncoderConfig, exist_ok=True)
