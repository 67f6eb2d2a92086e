"""`make test` cleans up after itself even when interrupted: its notebook outputs (gigabytes of smoke models) go to a
temporary folder that must not outlive a Ctrl-C or a kill."""
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

MAKEFILE = Path(__file__).resolve().parent.parent / "Makefile"


def recipe(target: str) -> str:
    """A target's shell lines as make hands them to sh ($$ -> $, continuation lines joined)."""
    text = MAKEFILE.read_text()
    body = re.search(rf"^{target}:[^\n]*\n((?:\t[^\n]*\n)+)", text, re.M).group(1)
    return body.replace("\\\n", "").replace("\t", "").replace("$$", "$")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_test_run_removes_its_temporary_folder(tmp_path, sig):
    script = recipe("test")
    assert "pytest --nbval-lax" in script
    script = re.sub(r"HF_HUB_OFFLINE=1 .*pytest --nbval-lax.*", "sleep 60", script)
    # as a terminal's foreground job gets them: a job started in the background (nohup, CI) inherits SIGINT ignored,
    # and sh cannot trap a signal ignored on entry
    proc = subprocess.Popen(["sh", "-c", script], env={**os.environ, "TMPDIR": str(tmp_path)},
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 20
    while not any(tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.05)
    assert any(tmp_path.iterdir()), "the recipe made no temporary folder"
    os.killpg(proc.pid, sig)  # as Ctrl-C in a terminal signals the whole foreground group
    proc.wait(timeout=20)
    assert not any(tmp_path.iterdir())


def test_clean_artifacts_removes_only_a_profiles_models():
    assert recipe("clean-artifacts").strip() == "rm -rf outputs/$(PROFILE)/artifacts"
