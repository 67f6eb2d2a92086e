"""Models saved by earlier code still load: the folders under tests/fixtures/saved_before_layout were written by
`save_pretrained` when the modules sat flat in pairlib/ (its README says when), with the outputs they gave then."""
import json
from pathlib import Path

import pytest
import torch

from pairlib.deformer.modeling import DeFormerForQuestionAnswering
from pairlib.dipair.modeling import CrossEncoder, DiPairModel, DualEncoder
from pairlib.fastbert.modeling import FastBertForSequenceClassification

SAVED = Path(__file__).parent / "fixtures" / "saved_before_layout"
KINDS = {"deformer": (DeFormerForQuestionAnswering, lambda o: o.start_logits),
         "fastbert": (FastBertForSequenceClassification, lambda o: o.logits),
         "dipair": (DiPairModel, lambda o: o), "dual-encoder": (DualEncoder, lambda o: o),
         "cross-encoder": (CrossEncoder, lambda o: o)}


@pytest.mark.parametrize("kind", KINDS)
def test_a_model_saved_before_the_move_loads_and_gives_the_same_outputs(kind):
    cls, output = KINDS[kind]
    model = cls.from_pretrained(SAVED / kind).eval()
    saved = json.loads((SAVED / kind / "expected.json").read_text())
    with torch.no_grad():
        y = output(model(**{k: torch.tensor(v) for k, v in saved["inputs"].items()}))
    torch.testing.assert_close(y, torch.tensor(saved["output"]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_the_saved_config_names_no_module_path(kind):
    config = json.loads((SAVED / kind / "config.json").read_text())
    assert "auto_map" not in config and config["model_type"] == KINDS[kind][0].config_class.model_type
