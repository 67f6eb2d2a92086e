"""FastBERT pinned down: speed 0 is the teacher, batched adaptive inference equals one-at-a-time, the uncertainty
and the FLOPs match the paper's definitions."""
import math

import pytest
import torch
from transformers import BertConfig

from pairlib.core.backbone import load_tokenizer
from pairlib.core.losses import self_distillation_loss
from pairlib.fastbert.modeling import (
    FastBertForSequenceClassification,
    adaptive_from_all_layers,
    branch_flops,
    full_model_flops,
    normalised_entropy,
    sample_flops,
)

TEXTS = ["a great, moving film", "dull and far too long", "the market fell sharply on monday",
         "new phone released today", "ok"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = FastBertForSequenceClassification.from_backbone("minilm-l6", num_labels=3).eval()
    # Spread the students' confidence so that some samples exit early at middle speeds.
    with torch.no_grad():
        for i, c in enumerate(m.classifiers):
            c.output.weight.mul_(1 + 3 * i)
    return m


@pytest.fixture(scope="module")
def batch():
    return load_tokenizer("minilm-l6")(TEXTS, padding="max_length", max_length=16, truncation=True,
                                       return_tensors="pt")


def test_uncertainty_is_normalised_entropy():
    p = torch.tensor([0.7, 0.2, 0.1])
    expected = sum(x * math.log(x) for x in p.tolist()) / math.log(1 / 3)
    assert normalised_entropy(p.log()).item() == pytest.approx(expected, rel=1e-6)
    assert normalised_entropy(torch.zeros(4)).item() == pytest.approx(1.0)
    assert normalised_entropy(torch.tensor([50.0, 0.0])).item() == pytest.approx(0.0, abs=1e-6)
    u = normalised_entropy(torch.randn(100, 5) * 3)
    assert ((u >= 0) & (u <= 1 + 1e-6)).all()


def test_speed_zero_is_the_teacher(model, batch):
    teacher = model(**batch).logits
    pred = model.adaptive_predict(**batch, speed=0.0)
    assert (pred.exit_layer == model.config.num_hidden_layers - 1).all()
    torch.testing.assert_close(pred.logits, teacher, rtol=1e-5, atol=1e-5)
    assert torch.equal(pred.logits.argmax(-1), teacher.argmax(-1))


def test_batched_and_one_at_a_time_agree(model, batch):
    last = model.config.num_hidden_layers - 1
    mean_exit = []
    for speed in (0.3, 0.6, 0.9, 1.0):
        together = model.adaptive_predict(**batch, speed=speed)
        for i in range(len(TEXTS)):
            alone = model.adaptive_predict(**{k: v[i:i + 1] for k, v in batch.items()}, speed=speed)
            assert alone.exit_layer.item() == together.exit_layer[i].item()
            assert alone.logits.argmax(-1).item() == together.logits[i].argmax(-1).item()
        mean_exit.append(together.exit_layer.float().mean().item())
    assert mean_exit == sorted(mean_exit, reverse=True) and mean_exit[-1] < last  # faster = earlier exits


def test_a_sweep_read_off_one_full_pass_equals_the_adaptive_passes(model, batch):
    all_logits = torch.stack(model(**batch, all_layers=True).all_logits)
    exits_seen = set()
    for speed in (0.0, 0.3, 0.6, 0.9, 1.0):
        adaptive = model.adaptive_predict(**batch, speed=speed)
        read_off = adaptive_from_all_layers(all_logits, speed)
        assert torch.equal(read_off.exit_layer, adaptive.exit_layer)
        torch.testing.assert_close(read_off.logits, adaptive.logits, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(read_off.uncertainty, adaptive.uncertainty, rtol=1e-5, atol=1e-5)
        exits_seen |= set(adaptive.exit_layer.tolist())
    assert len(exits_seen) > 1  # the speeds above make samples leave at different layers
    with pytest.raises(ValueError, match="speed"):
        adaptive_from_all_layers(all_logits, -0.1)


def test_bad_speed_is_refused(model, batch):
    with pytest.raises(ValueError, match="speed"):
        model.adaptive_predict(**batch, speed=1.5)


def test_save_and_load_round_trip(model, batch, tmp_path):
    model.save_pretrained(tmp_path)
    again = FastBertForSequenceClassification.from_pretrained(tmp_path).eval()
    a, b = model(**batch, all_layers=True), again(**batch, all_layers=True)
    for x, y in zip(a.all_logits, b.all_logits):
        torch.testing.assert_close(x, y)


def test_flops_match_the_papers_table_1():
    base = BertConfig(num_labels=2)  # BERT-base: 12 layers, 768 hidden, 3072 intermediate
    assert branch_flops(128, 768, 128, 2) / 1e6 == pytest.approx(46.1, abs=0.1)
    per_layer = (sample_flops(base, 128, 0) - branch_flops(128, 768, 128, 2)) / 1e6
    assert per_layer == pytest.approx(1809.9, rel=0.002)  # the paper prints 603.0 + 1207.9; analytic 604.0 + 1208.0
    assert full_model_flops(base, 128) / 1e6 == pytest.approx(21785, rel=0.002)
    assert sample_flops(base, 128, 11) > full_model_flops(base, 128)  # every student classifier is extra cost


def test_self_distillation_is_zero_only_when_students_match_the_teacher():
    t = torch.randn(4, 3)
    assert self_distillation_loss([t.clone(), t.clone()], t).item() == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(4, 3)
    one = self_distillation_loss([s], t)
    p, q = s.log_softmax(-1), t.log_softmax(-1)
    assert one.item() == pytest.approx((p.exp() * (p - q)).sum(-1).mean().item(), rel=1e-5)
    assert self_distillation_loss([s, s], t).item() == pytest.approx(2 * one.item(), rel=1e-5)
