"""How much a passage's representation at each layer depends on the question it is read with: the evidence DeFormer's
premise rests on (the authors' note, `../shared/seeds/`: "for a BERT-based QA model, when the document stays and the
question changes, the lower layers' representations change little": the variance, per layer, of the cosine distance
between the document's vectors and their centre).

For each passage read jointly (`[CLS] q [SEP] p [SEP]`) with several different questions, and each of its tokens:
the vectors it gets at a layer with each question, their centre, and each vector's cosine distance to the centre;
the variance of those distances (the note's measure) and their mean, averaged over tokens and passages. Beside them
what DeFormer actually substitutes: the cosine distance between the joint vector and the passage encoded alone (its
positions from 0, as DeFormer's passage cache has them), and the same at the positions it has in the joint input,
which leaves only what attending to the question changes. The question segment is padded to a fixed length, so a
passage token sits at the same position whatever the question.
"""
from __future__ import annotations

import hashlib

import pandas as pd
import torch
import torch.nn.functional as F

from pairlib.core.backbone import second_segment_type
from pairlib.deformer.inputs import tokenize_segment


def passages_with_questions(squad_split, passages: int, questions: int) -> list[tuple[str, list[str]]]:
    """`passages` contexts of a SQuAD split that have at least `questions` distinct questions, each with its first
    `questions`; contexts chosen by a hash of their text (the same on every machine), not by their order."""
    by_context: dict[str, list[str]] = {}
    for context, question in zip(squad_split["context"], squad_split["question"]):
        seen = by_context.setdefault(context, [])
        if question not in seen:
            seen.append(question)
    eligible = sorted((c for c, qs in by_context.items() if len(qs) >= questions),
                      key=lambda c: hashlib.md5(c.encode("utf-8")).hexdigest())
    if len(eligible) < passages:
        raise ValueError(f"only {len(eligible)} contexts have {questions} questions; ask for fewer passages")
    return [(c, by_context[c][:questions]) for c in eligible[:passages]]


@torch.inference_mode()
def layer_drift(model, tokenizer, pairs: list[tuple[str, list[str]]], question_length: int,
                passage_length: int) -> pd.DataFrame:
    """Per layer (0: the embeddings, then each transformer layer), averaged over every passage token of every
    passage: `variance` and `mean_distance` of the cosine distance to the centre of the token's vectors over the
    questions; `distance_to_alone`, the mean cosine distance between each joint vector and the passage's vector
    encoded alone as DeFormer caches it (positions from 0), and `distance_to_alone_same_positions` with the
    positions it has in the joint input (what attending to the question alone changes)."""
    model.eval()
    second = second_segment_type(tokenizer)
    sums: dict[str, torch.Tensor] = {}
    tokens = 0
    for passage, questions in pairs:
        q_ids, q_mask = tokenize_segment(tokenizer, questions, question_length, "question")
        p_ids, p_mask = tokenize_segment(tokenizer, [passage], passage_length, "passage")
        m = len(questions)
        ids = torch.cat([q_ids, p_ids.expand(m, -1)], dim=1)
        mask = torch.cat([q_mask, p_mask.expand(m, -1)], dim=1)
        types = torch.cat([torch.zeros_like(q_ids), torch.full_like(p_ids.expand(m, -1), second)], dim=1)
        joint = torch.stack(model(input_ids=ids, attention_mask=mask, token_type_ids=types,
                                  output_hidden_states=True).hidden_states)[:, :, question_length:]  # (L+1, m, P, H)
        p_types = torch.full_like(p_ids, second)
        alone = torch.stack(model(input_ids=p_ids, attention_mask=p_mask, token_type_ids=p_types,
                                  output_hidden_states=True).hidden_states)  # (L+1, 1, P, H)
        shifted = torch.arange(question_length, question_length + p_ids.shape[1]).unsqueeze(0)
        placed = torch.stack(model(input_ids=p_ids, attention_mask=p_mask, token_type_ids=p_types,
                                   position_ids=shifted, output_hidden_states=True).hidden_states)
        keep = p_mask[0].bool()
        joint, alone, placed = joint[:, :, keep], alone[:, :, keep], placed[:, :, keep]
        centre = joint.mean(dim=1, keepdim=True)
        distance = 1 - F.cosine_similarity(joint, centre, dim=-1)  # (L+1, m, tokens)
        parts = {"variance": distance.var(dim=1, unbiased=False).sum(dim=1),
                 "mean_distance": distance.mean(dim=1).sum(dim=1),
                 "distance_to_alone": (1 - F.cosine_similarity(joint, alone, dim=-1)).mean(dim=1).sum(dim=1),
                 "distance_to_alone_same_positions":
                     (1 - F.cosine_similarity(joint, placed, dim=-1)).mean(dim=1).sum(dim=1)}
        for k, v in parts.items():
            sums[k] = sums.get(k, 0) + v
        tokens += int(keep.sum())
    layers = len(next(iter(sums.values())))
    return pd.DataFrame({"layer": range(layers), **{k: (v / tokens).tolist() for k, v in sums.items()}})
