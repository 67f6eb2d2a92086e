import subprocess
import sys

import nbformat
import papermill as pm
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_notebook

from pairlib.core import stopping
from pairlib.study import profiles, run

ROOT = run.REPO_ROOT


def _nb(path, params_src, body_src):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    p = new_code_cell(params_src)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, new_code_cell(body_src)]
    nbformat.write(nb, path)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """A notebooks/ and params/ of two tiny notebooks, the second failing while `fail = True`."""
    nbs, params = tmp_path / "notebooks", tmp_path / "params"
    nbs.mkdir(), params.mkdir()
    _nb(nbs / "00_a.ipynb", "profile = 'smoke'\noutput_dir = None\nn = 1", "print('a', n)")
    _nb(nbs / "10_b.ipynb", "profile = 'smoke'\noutput_dir = None\nfail = False", "assert not fail, 'boom'")
    (params / "smoke.yaml").write_text(yaml.safe_dump({"description": "t", "notebooks": {"00_a": {"n": 2}}}))
    monkeypatch.setattr(profiles, "NOTEBOOK_DIR", nbs)
    monkeypatch.setattr(profiles, "PARAMS_DIR", params)
    return tmp_path


def test_every_real_notebook_declares_profile_and_output_dir_and_every_profile_fits():
    assert run.notebooks(), "no notebooks found"
    for nb in run.notebooks():
        declared = pm.inspect_notebook(str(nb))
        assert {"profile", "output_dir"} <= set(declared), nb.name
    for profile in run.profiles():
        spec = run.load_profile(profile)
        for nb in run.notebooks():
            run.parameters_for(nb, profile, spec, ROOT / "outputs" / profile)  # raises on an undeclared key


def test_the_three_profiles_exist():
    assert {"smoke", "cpu", "full"} <= set(run.profiles())


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(run.RunError, match="unknown profile 'fast'; valid profiles: .*cpu.*smoke"):
        run.load_profile("fast")


def test_unknown_notebook_lists_valid_ones():
    with pytest.raises(run.RunError, match="no notebook matches.*00_data"):
        run.select(["99_nope"])


def test_cli_exits_2_with_a_clear_message():
    out = subprocess.run([sys.executable, "-m", "pairlib", "run", "--profile", "nope"], capture_output=True, text=True)
    assert out.returncode == 2
    assert "unknown profile 'nope'" in out.stderr and "smoke" in out.stderr


def test_cli_list_shows_notebooks_and_profiles():
    out = subprocess.run([sys.executable, "-m", "pairlib", "list"], capture_output=True, text=True, check=True)
    assert "00_data" in out.stdout and "smoke" in out.stdout and "cpu" in out.stdout
    assert "backbones: minilm-l6, me5-small" in out.stdout


def test_undeclared_profile_key_is_refused(sandbox):
    (sandbox / "params" / "smoke.yaml").write_text(yaml.safe_dump({"notebooks": {"00_a": {"typo": 1}}}))
    with pytest.raises(run.RunError, match=r"sets \['typo'\] for 00_a"):
        run.run("smoke", output_root=sandbox / "out", progress_bar=False)
    assert not (sandbox / "out" / "smoke" / "00_a.ipynb").exists()  # validated before anything ran


def test_runner_injects_stops_at_failure_and_resumes(sandbox):
    out = sandbox / "out"
    (sandbox / "params" / "smoke.yaml").write_text(
        yaml.safe_dump({"notebooks": {"00_a": {"n": 2}, "10_b": {"fail": True}}}))
    with pytest.raises(run.RunError, match=r"(?s)10_b failed in cell \[3\].*AssertionError: boom.*--from 10_b"):
        run.run("smoke", output_root=out, progress_bar=False)
    done = out / "smoke"
    assert (done / "00_a.ipynb").exists() and not (done / "10_b.ipynb").exists()
    assert (done / "10_b.failed.ipynb").exists()
    executed = nbformat.read(done / "00_a.ipynb", as_version=4)
    assert "a 2" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert run.read_state(done)["notebooks"]["10_b"]["status"] == "failed"

    (sandbox / "params" / "smoke.yaml").write_text(
        yaml.safe_dump({"notebooks": {"00_a": {"n": 2}, "10_b": {"fail": False}}}))
    first_mtime = (done / "00_a.ipynb").stat().st_mtime
    state = run.run("smoke", output_root=out, resume=True, progress_bar=False)
    assert (done / "00_a.ipynb").stat().st_mtime == first_mtime  # not run again
    assert state["notebooks"]["10_b"]["status"] == "ok" and not (done / "10_b.failed.ipynb").exists()
    runs = run.runs_table(done).set_index("notebook")
    assert list(runs.status) == ["ok", "ok"] and runs.minutes.notna().all() and runs.commit.str.len().gt(0).all()

    # a finished notebook whose settings changed since is run again by --resume, the other is not
    (sandbox / "params" / "smoke.yaml").write_text(
        yaml.safe_dump({"notebooks": {"00_a": {"n": 3}, "10_b": {"fail": False}}}))
    b_mtime = (done / "10_b.ipynb").stat().st_mtime
    run.run("smoke", output_root=out, resume=True, progress_bar=False)
    executed = nbformat.read(done / "00_a.ipynb", as_version=4)
    assert "a 3" in "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert (done / "10_b.ipynb").stat().st_mtime == b_mtime


def test_runs_table_names_notebooks_that_have_not_run(sandbox):
    runs = run.runs_table(sandbox / "out" / "smoke")
    assert list(runs.notebook) == ["00_a", "10_b"] and set(runs.status) == {"not run"}


def test_from_starts_at_a_prefix(sandbox):
    assert [nb.stem for nb in run.select(start="10")] == ["10_b"]
    with pytest.raises(run.RunError, match="--from '20'"):
        run.select(start="20")


def test_notebooks_sharing_a_recipe_share_its_defaults():
    """Notebooks reuse one another's trained models (20/23/24, 30-33) only if a recipe parameter of the same name
    has the same default in each of them."""
    import papermill as pm
    seen: dict[str, dict[str, str]] = {}
    for nb in run.notebooks():
        for name, p in pm.inspect_notebook(str(nb)).items():
            if name.startswith(("deformer_", "fastbert_", "dipair_")):
                seen.setdefault(name, {})[nb.stem] = p["default"]
    assert seen, "no recipe parameters found"
    for name, defaults in seen.items():
        assert len(set(defaults.values())) == 1, f"{name} differs between notebooks: {defaults}"


@pytest.mark.parametrize("text,message", [
    ("defaults: {nn: 3}", r"defaults.nn is declared by no notebook's parameters cell \(a typo\?\)"),
    ("defaults: [1, 2", "params/smoke.yaml is not valid YAML"),
    ("just a string", "params/smoke.yaml must be a mapping"),
    ("- a\n- b", "params/smoke.yaml must be a mapping"),
    ("defaults: 3", "params/smoke.yaml: defaults must be a mapping"),
    ("notebooks: {00_a: [1]}", "notebooks.00_a must be a mapping"),
    ("notebooks: {00_a: {n: 'two'}}", r"notebooks.00_a.n must be a number like the notebook's default 1, got 'two'"),
])
def test_a_broken_profile_names_its_file_and_key(sandbox, text, message):
    (sandbox / "params" / "smoke.yaml").write_text(text)
    with pytest.raises(run.RunError, match=message):
        run.run("smoke", output_root=sandbox / "out", progress_bar=False)
    assert not (sandbox / "out" / "smoke" / "00_a.ipynb").exists()


def test_a_broken_profile_keeps_list_working(sandbox, capsys):
    (sandbox / "params" / "broken.yaml").write_text("defaults: [1, 2")
    run.list_cmd()
    assert "broken" in capsys.readouterr().out


def test_numbers_without_a_dot_are_numbers_and_recipes_are_checked_up_front():
    assert yaml.load("lr: 5e-5", Loader=run._ProfileLoader) == {"lr": 5e-5}
    with pytest.raises(run.RunError, match=r"defaults.fastbert_ag_news: FastBertRecipe.epochs must be at least 1"):
        run._check_value("params/x.yaml: defaults.fastbert_ag_news", "fastbert_ag_news",
                         {"task": "ag_news", "epochs": 0}, {"task": "ag_news"})
    with pytest.raises(run.RunError, match=r"deformer_squad: unknown recipe setting\(s\) \['epoch'\]"):
        run._check_value("params/x.yaml: defaults.deformer_squad", "deformer_squad",
                         {"question_length": 8, "passage_length": 8, "epoch": 1}, {})


def test_the_report_runs_after_the_notebooks_it_gathers():
    names = [nb.stem for nb in run.notebooks()]
    assert names[-1] == "90_report" and names.index("91_frontier") < names.index("90_report")


def _interrupting(exc):
    def execute(*args, **kwargs):
        raise exc
    return execute


@pytest.mark.parametrize("exc,status,message", [
    (KeyboardInterrupt(), "interrupted", "00_a interrupted after"),
    (type("DeadKernelError", (RuntimeError,), {})("Kernel died"), "failed", "00_a stopped: its kernel died"),
])
def test_a_dead_kernel_or_ctrl_c_ends_in_one_line_and_a_record(sandbox, monkeypatch, exc, status, message):
    monkeypatch.setattr(pm, "execute_notebook", _interrupting(exc))
    with pytest.raises(run.RunError, match=message) as e:
        run.run("smoke", output_root=sandbox / "out", progress_bar=False)
    assert "--from 00_a" in str(e.value) and isinstance(e.value, run.Interrupted) == (status == "interrupted")
    assert run.read_state(sandbox / "out" / "smoke")["notebooks"]["00_a"]["status"] == status


def test_resume_reruns_a_notebook_whose_rerun_was_interrupted(sandbox, monkeypatch):
    out = sandbox / "out"
    run.run("smoke", output_root=out, progress_bar=False)
    real = pm.execute_notebook
    monkeypatch.setattr(pm, "execute_notebook", _interrupting(KeyboardInterrupt()))
    with pytest.raises(run.Interrupted):
        run.run("smoke", only=["00_a"], output_root=out, progress_bar=False)
    ran = []
    monkeypatch.setattr(pm, "execute_notebook", lambda nb, *a, **k: ran.append(nb) or real(nb, *a, **k))
    run.run("smoke", output_root=out, resume=True, progress_bar=False)
    assert [p.rsplit("/", 1)[-1] for p in ran] == ["00_a.ipynb"]  # 10_b finished and was skipped


def test_a_relative_output_root_means_where_it_was_typed(sandbox, monkeypatch):
    elsewhere = sandbox / "here"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("PWD", str(elsewhere))
    run.run("smoke", only=["00_a"], output_root="rel", progress_bar=False)
    assert (elsewhere / "rel" / "smoke" / "00_a.ipynb").exists()


def test_a_relative_data_root_means_where_it_was_typed(tmp_path, monkeypatch):
    from pairlib.core.data import data_root
    (tmp_path / "mydata").mkdir()
    monkeypatch.setenv("PWD", str(tmp_path))
    monkeypatch.chdir(ROOT / "notebooks")  # where a kernel runs
    monkeypatch.setenv("PAIRLIB_DATA", "mydata")
    assert data_root() == tmp_path / "mydata"


def test_cli_ctrl_c_exits_130(monkeypatch, capsys):
    monkeypatch.setattr(run, "run", _interrupting(KeyboardInterrupt()))
    assert run.main(["run", "--profile", "smoke"]) == 130
    assert capsys.readouterr().err.count("\n") == 1


WRITES_THEN_FAILS = """import pandas as pd
from pairlib.study import report
out = report.output_dir(profile, output_dir)
report.save_table(pd.DataFrame({'x': [n]}), 't', out, profile)
report._merge_claim_rows([{'claim_id': 'c', 'paper': 'P', 'description': 'd', 'paper_value': '1', 'ours': str(n),
                           'unit': 'u', 'verdict': 'partly', 'evidence': '00_a'}], out)
assert report.read_claims(out).set_index('claim_id').ours['c'] == str(n)  # the notebook sees what it staged
assert n != 3, 'boom'
"""


def test_a_failed_run_leaves_the_results_it_would_replace_untouched(sandbox):
    _nb(sandbox / "notebooks" / "00_a.ipynb", "profile = 'smoke'\noutput_dir = None\nn = 1", WRITES_THEN_FAILS)
    out = sandbox / "out"
    (sandbox / "params" / "smoke.yaml").write_text(yaml.safe_dump({"notebooks": {"00_a": {"n": 2}}}))
    run.run("smoke", only=["00_a"], output_root=out, progress_bar=False)
    done = out / "smoke"
    assert (done / "tables" / "t.csv").read_text() == "x\n2\n" and ",2,u,partly," in (done / "claims.csv").read_text()
    (sandbox / "params" / "smoke.yaml").write_text(
        yaml.safe_dump({"notebooks": {"00_a": {"n": 3}, "10_b": {"fail": False}}}))
    with pytest.raises(run.RunError, match="boom"):
        run.run("smoke", only=["00_a"], output_root=out, progress_bar=False)
    assert (done / "tables" / "t.csv").read_text() == "x\n2\n" and ",2,u,partly," in (done / "claims.csv").read_text()
    assert not (done / ".staging" / "00_a").exists()
    runs = run.runs_table(done).set_index("notebook")
    assert runs.status["00_a"] == "ok (a later run failed)" and runs.minutes.notna()["00_a"]
    assert run.read_state(done)["notebooks"]["00_a"]["status"] == "failed"  # so --resume runs it again


def test_a_notebook_run_by_hand_never_writes_a_profiles_folder(tmp_path, monkeypatch, capsys):
    from pairlib.study import report
    monkeypatch.delenv("PAIRLIB_OUTPUTS", raising=False)
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path)
    assert report.output_dir("cpu") == tmp_path / "outputs" / "interactive" / "cpu"
    assert "not run by `pairlib run`" in capsys.readouterr().out
    monkeypatch.setenv(report.STAGING_ENV, str(tmp_path / "outputs" / "cpu" / ".staging" / "nb"))  # the runner's
    assert report.output_dir("cpu", tmp_path / "outputs" / "cpu") == tmp_path / "outputs" / "cpu"


def test_an_executed_notebook_keeps_its_streams_as_a_reader_sees_them():
    from nbformat.v4 import new_output

    cell = new_code_cell("train()", outputs=[
        new_output("stream", name="stdout", text="resuming\n"),
        new_output("stream", name="stderr", text="\repoch 1:  10%| 1/10"),
        new_output("stream", name="stderr", text="\repoch 1: 100%| 10/10"),
        new_output("stream", name="stderr", text="\n"),
        new_output("stream", name="stdout", text="loss=0.5\n"),
        new_output("stream", name="stdout", text="done 12345\rok\r\n"),
        new_output("display_data", data={"text/plain": "table"}),
        new_output("stream", name="stdout", text="after\n"),
    ])
    nb = new_notebook(cells=[cell])
    run.tidy_streams(nb)
    assert [(o.output_type, o.get("name"), o.get("text")) for o in nb.cells[0].outputs] == [
        ("stream", "stdout", "resuming\n"),
        ("stream", "stderr", "epoch 1: 100%| 10/10\n"),
        ("stream", "stdout", "loss=0.5\nokne 12345\n"),  # a shorter line after \r overwrites only its start
        ("display_data", None, None),
        ("stream", "stdout", "after\n"),
    ]


def test_every_settings_parameter_a_notebook_declares_is_checked():
    """A dict parameter without an entry in profile_checks would take any key a profile gives it."""
    from pairlib.study import profile_checks

    declared = {k for nb in run.notebooks() for k, v in run._declared(nb).items() if isinstance(v, dict)}
    assert declared <= set(profile_checks.PARAMETERS), sorted(declared - set(profile_checks.PARAMETERS))


def _mutated(value):
    """One key of a setting broken: a nested key misspelt, or a value of another kind."""
    if isinstance(value, dict):
        if not value:
            return {"typo": 1}
        first = next(iter(value))
        return {f"{first}_typo" if k == first else k: v for k, v in value.items()}
    return {"typo": 1} if not isinstance(value, dict) and value is not None else "four"


@pytest.mark.parametrize("profile", ["smoke", "cpu", "full"])
def test_each_notebook_sections_keys_are_checked_naming_file_and_key(profile, tmp_path, monkeypatch):
    spec = yaml.safe_load((ROOT / "params" / f"{profile}.yaml").read_text())
    monkeypatch.setattr(profiles, "PARAMS_DIR", tmp_path)
    sections = [("defaults", None, key) for key in spec.get("defaults") or {}]
    sections += [("notebooks", nb, next(iter(own))) for nb, own in (spec.get("notebooks") or {}).items() if own]
    assert len(sections) >= 2
    for section, nb, key in sections:
        broken = yaml.safe_load((ROOT / "params" / f"{profile}.yaml").read_text())
        where = broken[section] if nb is None else broken[section][nb]
        where[key] = _mutated(where[key])
        (tmp_path / f"{profile}.yaml").write_text(yaml.safe_dump(broken))
        name = f"{section}.{key}" if nb is None else f"notebooks.{nb}.{key}"
        with pytest.raises(run.RunError) as err:
            run.load_profile(profile)
        assert f"params/{profile}.yaml" in str(err.value) and name in str(err.value), (name, str(err.value))


@pytest.mark.parametrize("key,value,message", [
    ("deformer_pairs", {"mnli": {"question_length": 8, "passage_length": 8, "lr": ".1"}}, "mnli: DeFormerRecipe.lr"),
    ("dipair_head", {"head_dims": 64}, r"unknown DiPair head setting\(s\) \['head_dims'\]"),
    ("sweep", {"head_layers": 2}, "must list the values"),
    ("zh_pretrain", {"layer": 2}, r"unknown recipe setting\(s\) \['layer'\]"),
    ("frontier_deformer", {"loss_weights": {"kd": -1.0}}, "loss_weights: loss weights must be >= 0"),
    ("split_layer", "four", "must be int or null"),
    ("fastbert_ag_news", {"task": "ag_news", "lr": float("inf")}, "must be a finite number"),
])
def test_settings_parameters_are_checked_against_what_they_feed(key, value, message):
    with pytest.raises(run.RunError, match=message):
        run._check_value(f"params/x.yaml: defaults.{key}", key, value, None)


def test_an_empty_profile_a_foldered_name_or_a_repeated_key_is_refused(sandbox):
    (sandbox / "params" / "cpu.yaml").write_text("")
    with pytest.raises(run.RunError, match="params/cpu.yaml is empty"):
        run.load_profile("cpu")
    with pytest.raises(run.RunError, match="unknown profile '../params/cpu'"):
        run.load_profile("../params/cpu")
    (sandbox / "params" / "twice.yaml").write_text("description: t\ndefaults: {n: 1}\ndefaults: {n: 2}\n")
    with pytest.raises(run.RunError, match="key 'defaults' is given twice"):
        run.load_profile("twice")
    (sandbox / "params" / "latin.yaml").write_bytes("description: caf\xe9\n".encode("latin-1"))
    with pytest.raises(run.RunError, match="not UTF-8"):
        run.load_profile("latin")


def test_the_committed_outputs_are_written_only_from_a_clean_tree(sandbox, monkeypatch):
    from pairlib.study import report
    monkeypatch.setattr(run, "REPO_ROOT", sandbox)
    monkeypatch.setattr(report, "git_commit", lambda root=None: "abc123-dirty")
    with pytest.raises(run.RunError, match="uncommitted changes.*--allow-dirty"):
        run.run("smoke", progress_bar=False)
    assert not (sandbox / "outputs" / "smoke" / "00_a.ipynb").exists()


def test_readme_publishes_only_the_committed_profile(capsys):
    assert run.main(["readme", "--profile", "smoke"]) == 2
    assert "only" in capsys.readouterr().err


def test_an_executed_notebook_run_again_by_hand_does_not_write_the_committed_outputs(monkeypatch, tmp_path):
    from pairlib.study import report
    monkeypatch.delenv(report.STAGING_ENV, raising=False)
    monkeypatch.delenv("PAIRLIB_OUTPUTS", raising=False)
    monkeypatch.setattr(report, "REPO_ROOT", tmp_path)
    assert report.output_dir("cpu", "outputs/cpu") == tmp_path / "outputs" / "interactive" / "cpu"
    monkeypatch.setenv(report.STAGING_ENV, str(tmp_path / "outputs" / "cpu" / ".staging" / "x"))
    assert report.output_dir("cpu", "outputs/cpu") == tmp_path / "outputs" / "cpu"


def test_results_that_cannot_all_be_written_replace_none(sandbox):
    from pairlib.study import report
    out = sandbox / "out" / "smoke"
    staging = out / ".staging" / "nb"
    for kind, name in (("tables", "t.csv"), ("figures", "f.png")):
        (staging / kind).mkdir(parents=True)
        (staging / kind / name).write_text("new")
    (out / "tables").mkdir(parents=True)
    (out / "tables" / "t.csv").write_text("old")
    (out / "figures").write_text("a file where the figures folder should be")
    with pytest.raises(OSError):
        report.commit_staged(staging, out)
    assert (out / "tables" / "t.csv").read_text() == "old"
    assert [p.name for p in (out / "tables").iterdir()] == ["t.csv"]  # no temporary copy left


def test_sigterm_ends_a_run_as_an_interrupt_with_its_record(sandbox, monkeypatch, capsys):
    """`kill <pid>` is how a background run is stopped: it ends like Ctrl-C, recorded, with the shell's status."""
    import os
    import signal
    import threading
    _nb(sandbox / "notebooks" / "10_b.ipynb", "profile = 'smoke'\noutput_dir = None\nfail = False",
        "import time\ntime.sleep(60)")
    monkeypatch.setattr(run, "REPO_ROOT", sandbox)
    timer = threading.Timer(8, os.kill, (os.getpid(), signal.SIGTERM))
    timer.start()
    try:
        status = run.main(["run", "--profile", "smoke", "--output-root", str(sandbox / "out"), "--no-progress",
                           "--allow-dirty"])
    finally:
        timer.cancel()
    assert status == 143 and "stopped after" in capsys.readouterr().err
    state = run.read_state(sandbox / "out" / "smoke")["notebooks"]
    assert state["10_b"]["status"] == "interrupted" and state["10_b"]["error"] == "stopped by SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is not stopping._raise  # the handler is the runner's only while it runs


def test_a_notebook_another_process_is_running_is_refused(sandbox):
    from pairlib.core.artifacts import held
    out = sandbox / "out" / "smoke"
    with held(out / ".10_b.lock", "another runner"):
        with pytest.raises(run.RunError, match="in use by process"):
            run.run("smoke", output_root=sandbox / "out", progress_bar=False)
    assert not (out / "00_a.ipynb").exists()  # refused before anything ran


def test_an_executed_notebook_holds_no_progress_bar(sandbox):
    """Bars belong to a console: the runner's kernels start with ours and the libraries' (datasets' here) off."""
    import nbformat
    _nb(sandbox / "notebooks" / "00_a.ipynb", "profile = 'smoke'\noutput_dir = None\nn = 1",
        "from pairlib.core.progress import bar\nfor _ in bar(range(3), desc='work', mininterval=0): pass\n"
        "import datasets\ndatasets.Dataset.from_dict({'a': [1, 2, 3]}).map(lambda r: r)\nprint('done')")
    run.run("smoke", only=["00_a"], output_root=sandbox / "out", progress_bar=False)
    nb = nbformat.read(sandbox / "out" / "smoke" / "00_a.ipynb", as_version=4)
    outputs = [o for c in nb.cells for o in c.get("outputs", [])]
    assert [o.get("text") for o in outputs] == ["done\n"]
    assert "widgets" not in nb.metadata


def test_an_output_root_that_is_a_file_or_a_broken_record_is_a_clear_error(sandbox):
    (sandbox / "afile").write_text("x")
    with pytest.raises(run.RunError, match="cannot write outputs into"):
        run.run("smoke", output_root=sandbox / "afile", progress_bar=False)
    out = sandbox / "out" / "smoke"
    out.mkdir(parents=True)
    (out / "run_state.json").write_text("{ broken")
    with pytest.raises(run.RunError, match="run_state.json is not a readable run record"):
        run.run("smoke", output_root=sandbox / "out", progress_bar=False)


def test_a_profile_extends_another_and_runs_only_its_own_notebooks(sandbox):
    """A profile that runs some notebooks again (on another backbone) keeps its base's settings, merged key by key
    down to a recipe's dict, and runs only the notebooks it lists."""
    params = sandbox / "params"
    _nb(sandbox / "notebooks" / "20_c.ipynb", "profile = 'smoke'\noutput_dir = None\nr = {'a': 1, 'b': 2}",
        "print('c', r)")
    (params / "smoke.yaml").write_text(yaml.safe_dump({"description": "t", "notebooks": {"20_c": {"r": {"a": 5}}}}))
    (params / "deep.yaml").write_text(yaml.safe_dump({"description": "d", "extends": "smoke", "runs": ["20_c"],
                                                      "notebooks": {"20_c": {"r": {"b": 7}}}}))
    spec = profiles.load_profile("deep")
    assert spec["notebooks"]["20_c"]["r"] == {"a": 5, "b": 7}
    assert [nb.stem for nb in profiles.profile_notebooks(spec)] == ["20_c"]
    assert profiles.extending("smoke") == ["deep"]
    run.run("deep", output_root=sandbox / "out", progress_bar=False)
    assert sorted(p.name for p in (sandbox / "out" / "deep").glob("*.ipynb")) == ["20_c.ipynb"]
    with pytest.raises(run.RunError, match="no notebook matches"):
        run.run("deep", only=["00_a"], output_root=sandbox / "out", progress_bar=False)
    for bad, message in [({"extends": "nope"}, "extends must name another profile"),
                         ({"runs": ["99_x"]}, "runs names unknown notebook"), ({"runs": "20_c"}, "runs must be a list")]:
        (params / "bad.yaml").write_text(yaml.safe_dump({"description": "b", **bad}))
        with pytest.raises(run.RunError, match=message):
            profiles.load_profile("bad")


def test_a_running_kernels_sockets_lie_outside_the_notebooks_folder(sandbox, monkeypatch):
    _nb(sandbox / "notebooks" / "10_b.ipynb", "profile = 'smoke'\noutput_dir = None",
        "import glob, os\nassert not glob.glob('kernel-ipc*'), os.listdir('.')")
    monkeypatch.setattr(run, "REPO_ROOT", sandbox)
    run.run("smoke", only=["10_b"], output_root=sandbox / "out", progress_bar=False, allow_dirty=True)


def test_the_runner_prints_no_kernel_transport_warning(sandbox, capfd):
    """Kernels talk over local IPC sockets: no "running over TCP without encryption" line per notebook."""
    run.run("smoke", only=["00_a"], output_root=sandbox / "out", progress_bar=False)
    assert "without encryption" not in capfd.readouterr().err
