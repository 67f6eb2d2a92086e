"""DeFormer's inputs for its three task kinds, as fixed-length question and passage segments, plus SQuAD's span
post-processing.

Every kind produces a `Segments`: tensors whose first dimension is the example (or SQuAD window) and the id of the
passage each row reads, so that a passage shared by several rows (a SQuAD context with many questions, a RACE
article with four options) is encoded and cached once. The question segment is `[CLS] q [SEP]` padded to
`question_length`, the passage segment `p [SEP]` padded to `passage_length` (see `deformer.tokenize_segments`).

SQuAD contexts longer than a passage segment are cut into windows every `doc_stride` tokens (BERT's meaning:
the step between window starts; the paper uses 128 at length 320). Training keeps only windows that hold the whole
answer (the model has no "no answer in this window" position, because its span logits cover passage tokens only);
evaluation scores every window and keeps the best span over all of them, as BERT's `run_squad` does.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


def tokenize_segment(tokenizer, texts: list[str], length: int, side: str) -> tuple[torch.Tensor, torch.Tensor]:
    """One of DeFormer's segments, padded to `length`: `[CLS] q [SEP]` for the question, `p [SEP]` for the passage
    (its [CLS] dropped, so that the joint sequence reads exactly like BERT's `[CLS] q [SEP] p [SEP]`)."""
    if side not in ("question", "passage"):
        raise ValueError(f"side must be 'question' or 'passage', got {side!r}")
    extra = side == "passage"
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=length + extra, return_tensors="pt")
    return enc["input_ids"][:, extra:], enc["attention_mask"][:, extra:]


def tokenize_segments(tokenizer, questions: list[str], passages: list[str], question_length: int,
                      passage_length: int) -> dict[str, torch.Tensor]:
    """DeFormer's two segments, each padded to a fixed length (`tokenize_segment`)."""
    q_ids, q_mask = tokenize_segment(tokenizer, questions, question_length, "question")
    p_ids, p_mask = tokenize_segment(tokenizer, passages, passage_length, "passage")
    return {"question_input_ids": q_ids, "question_attention_mask": q_mask,
            "passage_input_ids": p_ids, "passage_attention_mask": p_mask}



@dataclass
class Segments:
    tensors: dict[str, torch.Tensor]  # question_* and passage_* inputs (+ labels when known), first dim = rows
    passage_ids: list[str]  # the passage (window) each row reads; the cache key
    row_example: list[int] = field(default_factory=list)  # SQuAD: the example each window row belongs to
    offsets: list[list[tuple[int, int]]] = field(default_factory=list)  # SQuAD: passage tokens' character spans

    def __len__(self) -> int:
        return len(self.passage_ids)

    def rows(self, index) -> dict[str, torch.Tensor]:
        return {k: v[index] for k, v in self.tensors.items()}

    def head(self, n: int) -> "Segments":
        """The first n rows (e.g. the rows a benchmark times, so that only their passages need caching)."""
        pick = lambda xs: xs[:n] if xs else xs  # noqa: E731
        return Segments(self.rows(slice(0, n)), self.passage_ids[:n], pick(self.row_example), pick(self.offsets))


def _check_lengths(question_length: int, passage_length: int) -> None:
    if question_length < 3 or passage_length < 2:
        raise ValueError(f"question_length must be >= 3 and passage_length >= 2 (room for special tokens), got "
                         f"{question_length} and {passage_length}")


# ----------------------------------------------------------------------------------------------------------------
# SQuAD: span QA over passage windows


def squad_segments(tokenizer, questions: list[str], contexts: list[str], question_length: int, passage_length: int,
                   doc_stride: int, answer_starts: list[int] | None = None,
                   answer_texts: list[str] | None = None) -> Segments:
    """One row per (question, window of its context). With answers given (training), rows whose window does not
    hold the whole answer are left out and the rest carry `start_positions` / `end_positions` over passage tokens."""
    _check_lengths(question_length, passage_length)
    content = passage_length - 1  # the window's text tokens; the last position is [SEP]
    if not 0 < doc_stride <= content:
        raise ValueError(f"doc_stride must be in 1..{content} (passage_length - 1), got {doc_stride}")
    if (answer_starts is None) != (answer_texts is None):
        raise ValueError("give both answer_starts and answer_texts, or neither")
    unique = list(dict.fromkeys(contexts))
    context_index = {c: i for i, c in enumerate(unique)}
    p = tokenizer(unique, max_length=passage_length + 1, truncation=True, stride=content - doc_stride,
                  return_overflowing_tokens=True, return_offsets_mapping=True, padding="max_length",
                  return_tensors="pt")
    windows_of: dict[int, list[int]] = {}
    for w, c in enumerate(p["overflow_to_sample_mapping"].tolist()):
        windows_of.setdefault(c, []).append(w)
    # Drop the window's [CLS]; special and padding tokens get the empty span (0, 0), as HF marks them.
    special = (p["input_ids"] == tokenizer.cls_token_id) | (p["input_ids"] == tokenizer.sep_token_id)
    offsets = p["offset_mapping"].masked_fill(special[..., None] | (p["attention_mask"] == 0)[..., None], 0)[:, 1:]
    q = tokenizer(questions, max_length=question_length, truncation=True, padding="max_length", return_tensors="pt")

    rows_q, rows_w, starts, ends = [], [], [], []
    for i, c in enumerate(contexts):
        for w in windows_of[context_index[c]]:
            if answer_starts is not None:
                span = _token_span(offsets[w], answer_starts[i], answer_starts[i] + len(answer_texts[i]))
                if span is None:
                    continue
                starts.append(span[0])
                ends.append(span[1])
            rows_q.append(i)
            rows_w.append(w)
    iq, iw = torch.tensor(rows_q, dtype=torch.long), torch.tensor(rows_w, dtype=torch.long)
    tensors = {"question_input_ids": q["input_ids"][iq], "question_attention_mask": q["attention_mask"][iq],
               "passage_input_ids": p["input_ids"][iw, 1:], "passage_attention_mask": p["attention_mask"][iw, 1:]}
    if answer_starts is not None:
        tensors["start_positions"] = torch.tensor(starts, dtype=torch.long)
        tensors["end_positions"] = torch.tensor(ends, dtype=torch.long)
    return Segments(tensors, passage_ids=[str(w) for w in rows_w], row_example=rows_q,
                    offsets=[[tuple(o) for o in offsets[w].tolist()] for w in rows_w])


def _token_span(offsets: torch.Tensor, char_start: int, char_end: int) -> tuple[int, int] | None:
    """First and last passage token of [char_start, char_end) if the window holds all of it."""
    real = (offsets[:, 1] > 0).nonzero().flatten()
    if len(real) == 0 or offsets[real[0], 0] > char_start or offsets[real[-1], 1] < char_end:
        return None
    start = next(int(t) for t in real if offsets[t, 1] > char_start)
    end = next(int(t) for t in reversed(real.tolist()) if offsets[t, 0] < char_end)
    return (start, end) if start <= end else None


@torch.no_grad()
def best_spans(start_logits: torch.Tensor, end_logits: torch.Tensor, segments: Segments, contexts: list[str],
               max_answer_length: int = 30, chunk: int = 256) -> list[str]:
    """Each example's answer: the highest start+end score over all its windows, among spans of real passage tokens
    with end >= start and at most `max_answer_length` tokens (BERT's `run_squad` rule)."""
    if max_answer_length < 1:
        raise ValueError(f"max_answer_length must be >= 1, got {max_answer_length}")
    n_rows, length = start_logits.shape
    band = torch.ones(length, length, dtype=torch.bool).triu().tril(max_answer_length - 1)
    best: dict[int, tuple[float, str]] = {}
    for lo in range(0, n_rows, chunk):
        s, e = start_logits[lo:lo + chunk].float(), end_logits[lo:lo + chunk].float()
        offs = torch.tensor(segments.offsets[lo:lo + chunk])  # (rows, length, 2)
        real = offs[..., 1] > 0
        scores = s[:, :, None] + e[:, None, :]
        valid = band & real[:, :, None] & real[:, None, :]
        scores = scores.masked_fill(~valid, float("-inf")).flatten(1)
        top, arg = scores.max(dim=1)
        for r, (score, flat) in enumerate(zip(top.tolist(), arg.tolist())):
            row = lo + r
            example = segments.row_example[row]
            if score == float("-inf") or (example in best and best[example][0] >= score):
                continue
            i, j = divmod(flat, length)
            text = contexts[example][offs[r, i, 0]:offs[r, j, 1]]
            best[example] = (score, text)
    return [best.get(i, (0.0, ""))[1] for i in range(len(contexts))]


# ----------------------------------------------------------------------------------------------------------------
# BoolQ: pair classification; RACE: multiple choice over one article


def pair_segments(tokenizer, questions: list[str], passages: list[str], question_length: int, passage_length: int,
                  labels: list[int] | None = None) -> Segments:
    """One row per pair; the passage is truncated to the segment (BoolQ passages rarely exceed 224 tokens)."""
    _check_lengths(question_length, passage_length)
    unique = list(dict.fromkeys(passages))
    tensors = tokenize_segments(tokenizer, questions, passages, question_length, passage_length)
    if labels is not None:
        tensors["labels"] = torch.tensor(labels, dtype=torch.long)
    index = {p: str(i) for i, p in enumerate(unique)}
    return Segments(tensors, passage_ids=[index[p] for p in passages])


def choice_text(question: str, option: str) -> str:
    """RACE's cloze questions hold a blank `_` that the option fills; other questions are followed by the option."""
    return question.replace("_", option, 1) if "_" in question else f"{question} {option}"


def choice_segments(tokenizer, questions: list[str], options: list[list[str]], articles: list[str],
                    question_length: int, passage_length: int, labels: list[int] | None = None) -> Segments:
    """One row per question: question segments of shape (choices, question_length), one article segment."""
    _check_lengths(question_length, passage_length)
    n_choices = {len(o) for o in options}
    if len(n_choices) != 1:
        raise ValueError(f"every question needs the same number of options, got {sorted(n_choices)}")
    c = n_choices.pop()
    texts = [choice_text(q, o) for q, opts in zip(questions, options) for o in opts]
    seg = tokenize_segments(tokenizer, texts, [a for a in articles for _ in range(c)], question_length,
                            passage_length)
    tensors = {"question_input_ids": seg["question_input_ids"].view(len(questions), c, question_length),
               "question_attention_mask": seg["question_attention_mask"].view(len(questions), c, question_length),
               "passage_input_ids": seg["passage_input_ids"][::c], "passage_attention_mask":
               seg["passage_attention_mask"][::c]}
    if labels is not None:
        tensors["labels"] = torch.tensor(labels, dtype=torch.long)
    unique = {a: str(i) for i, a in enumerate(dict.fromkeys(articles))}
    return Segments(tensors, passage_ids=[unique[a] for a in articles])
