import os
import tempfile

# Fail fast on any accidental Hub call, and keep test runs away from the committed outputs/.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("PAIRLIB_OUTPUTS", tempfile.mkdtemp(prefix="pairlib-test-outputs-"))
