import json

from pairlib.core.artifacts import REPO_ROOT, artifact_dir


def test_artifact_dir_is_named_by_its_settings(tmp_path):
    a = artifact_dir(tmp_path, "m", {"lr": 1e-4, "k": 4})
    assert a == artifact_dir(tmp_path, "m", {"k": 4, "lr": 1e-4})
    assert a != artifact_dir(tmp_path, "m", {"k": 3, "lr": 1e-4})
    assert json.loads((a / "settings.json").read_text()) == {"k": 4, "lr": 1e-4}


def test_the_repository_root_holds_the_package_and_the_notebooks():
    assert (REPO_ROOT / "pairlib" / "core" / "artifacts.py").is_file() and (REPO_ROOT / "notebooks").is_dir()


def test_shown_paths_are_relative_inside_and_beside_the_repository():
    from pairlib.core.artifacts import REPO_ROOT, shown
    assert shown(REPO_ROOT / "outputs" / "cpu") == "outputs/cpu"
    assert shown(REPO_ROOT.parent / "shared" / "data") == "../shared/data"


def test_shown_paths_under_home_name_no_user(tmp_path, monkeypatch):
    """The cache (`~/.cache/pairlib`) is printed by notebooks whose executed copies are committed."""
    from pathlib import Path

    from pairlib.core.artifacts import shown
    monkeypatch.setenv("HOME", str(tmp_path))
    assert shown(tmp_path / ".cache" / "pairlib" / "backbones") == str(Path("~/.cache/pairlib/backbones"))


def test_kept_outputs_are_read_back_for_the_same_weights_and_inputs_only(tmp_path):
    import torch

    from pairlib.core.artifacts import kept_outputs
    torch.manual_seed(0)
    model, inputs = torch.nn.Linear(3, 1), {"x": torch.randn(4, 3)}
    calls = []

    def compute(m=model):
        calls.append(1)
        return m(inputs["x"]).detach()

    first = kept_outputs(tmp_path, model, inputs, compute)
    copy = torch.nn.Linear(3, 1)
    copy.load_state_dict(model.state_dict())
    assert torch.equal(kept_outputs(tmp_path, copy, inputs, lambda: compute(copy)), first) and len(calls) == 1
    kept_outputs(tmp_path, model, {"x": inputs["x"] + 1}, compute)  # other inputs
    with torch.no_grad():
        copy.bias += 1e-6
    assert not torch.equal(kept_outputs(tmp_path, copy, inputs, lambda: compute(copy)), first)  # other weights
    assert len(calls) == 3 and len(list(tmp_path.glob("*.pt"))) == 3


def test_a_ledger_is_renamed_with_what_names_its_folders_and_never_by_guess(tmp_path):
    import json

    import pytest

    from pairlib.core import ledger
    from pairlib.core.artifacts import folder_name
    settings = {"task": "squad", "lr": 1e-4}
    old = tmp_path / "artifacts" / folder_name("deformer-squad-original", settings)
    old.mkdir(parents=True)
    (old / "settings.json").write_text(json.dumps(settings))
    ledger.record(tmp_path, old, {"steps": 3, "folder": old.name}, "dev", {"f1": 50.0}, "cpu", "w0")
    moves = ledger.renamed(tmp_path, lambda s: {**s, "schema": 2})
    new = folder_name("deformer-squad-original", {**settings, "schema": 2})
    assert moves == {old.name: new}
    entry = ledger.read_entry(tmp_path, new)
    assert entry["folder"] == entry["training"]["folder"] == new and entry["evaluations"]["dev"]["metrics"]["f1"] == 50
    assert not ledger.entry_path(tmp_path, old).exists()
    tampered = json.loads(ledger.entry_path(tmp_path, new).read_text())
    tampered["settings"]["lr"] = 1.0
    ledger.entry_path(tmp_path, new).write_text(json.dumps(tampered))
    with pytest.raises(ValueError, match="do not name its folder"):
        ledger.renamed(tmp_path, lambda s: s)
