"""What is committed stays clean: source notebooks hold no outputs and name the kernel `make` installs (so opening
one in JupyterLab changes nothing), and no committed output names a folder of the machine that wrote it."""
import json
import re
import subprocess

import pytest

from pairlib.core.artifacts import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
# an absolute path under the usual roots of a Linux or macOS machine, as printed or in a PosixPath
MACHINE_PATH = re.compile(r"(?<![\w.~-])/(?:home|root|work|tmp|Users|mnt|srv|var|opt|scratch)/[\w.-]+")


def _committed(folder: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", folder], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_source_notebook_holds_no_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        assert not cell.get("outputs") and cell.get("execution_count") is None, \
            f"{path.name}: code cell {i} holds outputs; run `make strip` before committing"



@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_cell_has_its_own_id(path):
    """nbformat 4.5 wants one (papermill warns and newer nbformat versions refuse without it); Lab adds missing ones
    on save, which would then show as a change to a notebook merely opened."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    ids = [c.get("id") for c in nb["cells"]]
    assert None not in ids, f"{path.name}: cell {ids.index(None)} has no id"
    assert len(set(ids)) == len(ids), f"{path.name}: cell ids repeat"

def test_notebooks_name_the_kernel_make_installs():
    installed = re.search(r'--display-name "([^"]+)"', (REPO_ROOT / "Makefile").read_text()).group(1)
    committed = [REPO_ROOT / f for f in _committed("outputs") if f.endswith(".ipynb")]
    for path in NOTEBOOKS + committed:
        spec = json.loads(path.read_text(encoding="utf-8"))["metadata"]["kernelspec"]
        assert (spec["name"], spec["display_name"]) == ("python3", installed), path


def test_no_committed_output_names_a_machines_folder():
    found = {}
    for f in _committed("outputs"):
        if f.endswith((".ipynb", ".md", ".csv", ".json", ".txt")):
            hits = MACHINE_PATH.findall((REPO_ROOT / f).read_text(encoding="utf-8"))
            if hits:
                found[f] = sorted(set(hits))[:3]
    assert not found, f"committed outputs name absolute paths: {found}"


def test_the_path_check_sees_what_it_should():
    assert MACHINE_PATH.findall("PosixPath('/work/main/outputs/cpu/x.png') and /home/me/data")
    assert not MACHINE_PATH.findall("outputs/cpu/x.png ../shared/data https://example.org/work/x")
