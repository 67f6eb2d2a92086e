"""How far Q4_0 moves a backbone's weights (notebook 37); what that costs after fine-tuning is
`controls.paired_summary`'s comparison."""
from __future__ import annotations

import pandas as pd
import torch

from pairlib.core.q4 import QUANTIZED


def weight_error(fp32: torch.nn.Module, q4: torch.nn.Module) -> pd.DataFrame:
    """||w_q4 - w|| / ||w|| for each tensor Q4_0 stores."""
    quantized = dict(q4.named_parameters())
    with torch.no_grad():
        return pd.DataFrame([{"tensor": name, "relative_error": float((quantized[name] - w).norm() / w.norm())}
                             for name, w in fp32.named_parameters() if name.endswith(QUANTIZED)])
