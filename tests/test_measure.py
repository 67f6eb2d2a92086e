import pytest
import torch

from pairlib.core import measure
from pairlib.core.backbone import load_backbone


@pytest.fixture(scope="module")
def eager_layer():
    model, _ = load_backbone("minilm-l6", num_layers=1, attn_implementation="eager")
    return model.encoder.layer[0].eval()


@pytest.mark.parametrize("seq_len", [16, 128])
def test_counted_flops_of_a_bert_layer_match_the_analytic_count(eager_layer, seq_len):
    x = torch.randn(1, seq_len, 384)
    assert measure.count_flops(lambda: eager_layer(x)) == measure.bert_layer_flops(seq_len, 384, 1536)


def test_sdpa_on_cpu_hides_the_attention_matmuls_from_the_counter():
    model, _ = load_backbone("minilm-l6", num_layers=1, attn_implementation="sdpa")
    x = torch.randn(1, 64, 384)
    counted = measure.count_flops(lambda: model.encoder.layer[0](x))
    assert counted == measure.bert_layer_flops(64, 384, 1536, attention_matmuls=False)


def test_fastbert_paper_layer_count_for_bert_base():
    # FastBERT Table 1: FFN 1207.9M at length 128 (thop counts no attention matmuls).
    ffn = 2 * measure.linear_flops(128, 768, 3072)
    assert ffn / 1e6 == pytest.approx(1207.9, abs=0.1)


def test_peak_memory_counts_live_tensors():
    def fn():
        a = torch.ones(1000)  # 4,000 bytes
        b = torch.ones(2000)  # 8,000 bytes, alive with a
        del a
        c = torch.ones(500)  # a is gone: peak stays 12,000
        return b.sum() + c.sum()
    mem = measure.peak_memory_bytes(fn)
    assert mem["tensor_peak"] == 12_000  # later scalars fit under the peak
    assert mem["tensor_total"] >= 4_000 + 8_000 + 2_000  # every tensor made, dead or alive


def test_time_side_by_side_and_speedup():
    slow = torch.randn(256, 256)
    t = measure.time_side_by_side({"slow": lambda: slow @ slow @ slow, "fast": lambda: slow.sum()},
                                  batch_size=4, warmup=1, repeats=5)
    assert set(t) == {"slow", "fast"} and all(v.median_s > 0 for v in t.values())
    assert measure.speedup(t, "slow")["slow"] == 1.0
    assert t["fast"].examples_per_s == pytest.approx(4 / t["fast"].median_s)
    with pytest.raises(ValueError):
        measure.time_side_by_side({"x": lambda: None}, batch_size=1, repeats=0)


def test_hardware_is_named():
    assert measure.hardware_label()
    assert "cores" in measure.hardware()


def test_torch_transformer_layers_are_counted_with_their_fast_path_off():
    # In inference, nn.TransformerEncoderLayer runs one fused kernel that the counter cannot see (it counted 256 of
    # DiPair's head's 31M FLOPs); count_flops turns that path off and leaves the setting as it was.
    layer = torch.nn.TransformerEncoderLayer(16, 2, 32, batch_first=True).eval()
    x = torch.randn(1, 4, 16)
    # projections and FFN; its attention matmuls run in CPU SDPA, unseen as in the test above
    expected = 2 * (4 * 4 * 16 * 16 + 2 * 4 * 16 * 32)
    assert measure.count_flops(lambda: layer(x)) == expected
    assert torch.backends.mha.get_fastpath_enabled()


def test_peak_resident_memory_sees_a_child_process():
    import subprocess
    import sys
    from pairlib.core.measure import PeakResidentMemory
    with PeakResidentMemory() as alone:
        pass
    with PeakResidentMemory() as with_child:
        subprocess.run([sys.executable, "-c", "import time; b = bytearray(300 * 2**20); time.sleep(0.5)"], check=True)
    assert with_child.peak_bytes > alone.peak_bytes + 200 * 2**20 and with_child.added_bytes > 200 * 2**20
