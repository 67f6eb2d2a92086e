import atexit
import os
import shutil
import tempfile

# Fail fast on any accidental Hub call, and keep test runs away from the committed outputs/.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "PAIRLIB_OUTPUTS" not in os.environ:
    _outputs = tempfile.mkdtemp(prefix="pairlib-test-outputs-")
    os.environ["PAIRLIB_OUTPUTS"] = _outputs
    atexit.register(shutil.rmtree, _outputs, ignore_errors=True)  # trained models add up to gigabytes
