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
