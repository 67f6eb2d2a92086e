"""DeFormer's inputs: SQuAD windows hold the answer where labelled, span decoding finds the best legal span."""
import pytest
import torch

from pairlib.core.backbone import load_tokenizer
from pairlib.deformer.inputs import best_spans, choice_segments, choice_text, pair_segments, squad_segments

CONTEXT = ("The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region "
           "in France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway.")


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer("minilm-l6")


def test_training_windows_label_exactly_the_answer_tokens(tok):
    answer = "Denmark, Iceland and Norway"
    seg = squad_segments(tok, ["where from?"], [CONTEXT], 8, 16, doc_stride=6,
                         answer_starts=[CONTEXT.index(answer)], answer_texts=[answer])
    assert len(seg) >= 1  # only windows holding the whole answer
    for r in range(len(seg)):
        s, e = int(seg.tensors["start_positions"][r]), int(seg.tensors["end_positions"][r])
        ids = seg.tensors["passage_input_ids"][r, s:e + 1]
        assert tok.decode(ids) == answer.lower()
        assert CONTEXT[seg.offsets[r][s][0]:seg.offsets[r][e][1]] == answer


def test_evaluation_keeps_every_window_and_windows_overlap(tok):
    seg = squad_segments(tok, ["q1", "q2"], [CONTEXT, CONTEXT], 8, 16, doc_stride=6)
    per_question = len(seg) // 2
    assert per_question > 3 and seg.row_example == [0] * per_question + [1] * per_question
    assert seg.passage_ids[:per_question] == seg.passage_ids[per_question:]  # one context, encoded once
    assert seg.tensors["passage_input_ids"].shape[1] == 16
    first, second = seg.offsets[0], seg.offsets[1]
    assert second[0][0] < first[14][1]  # the second window starts inside the first (step 6 of 15 tokens)


def test_doc_stride_must_fit_the_window(tok):
    with pytest.raises(ValueError, match="doc_stride"):
        squad_segments(tok, ["q"], [CONTEXT], 8, 16, doc_stride=16)


def test_best_span_is_the_top_legal_span_over_all_windows(tok):
    seg = squad_segments(tok, ["q"], [CONTEXT], 8, 16, doc_stride=6)
    start = torch.zeros(len(seg), 16)
    end = torch.zeros(len(seg), 16)
    start[1, 2], end[1, 4] = 5.0, 5.0  # the best span, in the second window
    start[0, 3], end[0, 1] = 9.0, 9.0  # higher, but it ends before it starts: illegal
    start[0, 15] = end[0, 15] = 50.0  # padding or [SEP]: not a passage token
    text = best_spans(start, end, seg, [CONTEXT])[0]
    o = seg.offsets[1]
    assert text == CONTEXT[o[2][0]:o[4][1]]
    assert best_spans(start, end, seg, [CONTEXT], max_answer_length=2)[0] != text  # 3 tokens is too long


def test_choice_segments_encode_each_article_once(tok):
    seg = choice_segments(tok, ["He went to the _ .", "Why?"], [["shop", "park"], ["rain", "sun"]],
                          ["Article one.", "Article one."], 10, 12, labels=[1, 0])
    assert seg.tensors["question_input_ids"].shape == (2, 2, 10)
    assert seg.tensors["passage_input_ids"].shape == (2, 12)
    assert seg.passage_ids == ["0", "0"]
    assert choice_text("He went to the _ .", "shop") == "He went to the shop ."
    assert choice_text("Why?", "rain") == "Why? rain"
    with pytest.raises(ValueError, match="same number of options"):
        choice_segments(tok, ["a", "b"], [["x", "y"], ["x"]], ["p", "q"], 10, 12)


def test_pair_segments_carry_labels_and_passage_ids(tok):
    seg = pair_segments(tok, ["is it?", "is it not?"], ["p one", "p two"], 8, 8, labels=[1, 0])
    assert seg.tensors["labels"].tolist() == [1, 0] and seg.passage_ids == ["0", "1"]
    head = seg.head(1)
    assert len(head) == 1 and head.tensors["question_input_ids"].shape == (1, 8)
