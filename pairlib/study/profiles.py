"""The notebooks, their declared parameters and the profiles that set them (`params/<profile>.yaml`), read and
checked before anything runs: every key against the notebooks' parameters cells and what `profile_checks` knows of
it, each error naming the file and the key."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import yaml

from pairlib.core.artifacts import REPO_ROOT
from pairlib.core.data import DataError
from pairlib.study import profile_checks

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = REPO_ROOT / "params"


class RunError(RuntimeError):
    """A run that cannot start or did not finish; its message says which notebook and what to do."""


def notebooks() -> list[Path]:
    """In number order, except that a report (`*_report`) runs after every notebook whose results it gathers."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"), key=lambda nb: (nb.stem.endswith("_report"), nb.stem))


def profiles() -> list[str]:
    return sorted(p.stem for p in PARAMS_DIR.glob("*.yaml"))


class _ProfileLoader(yaml.SafeLoader):
    """YAML 1.1 reads `5e-5` (no dot) as a string; a profile means a number. A key given twice in one mapping is an
    error (plain YAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice",
                                                        key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_ProfileLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)$"), list("-+0123456789."))

# Parameters that notebooks turn into recipes, checked before anything runs (with the task the notebook adds).
def load_profile(name: str) -> dict[str, Any]:
    """A profile, read and checked: its shape, every key against the notebooks' parameters cells, every value
    against the type of the parameter's default, every recipe as its class checks it. Each error names the file
    and the key."""
    path = PARAMS_DIR / f"{name}.yaml"
    if name not in profiles() or not path.exists():  # a name with a folder in it (`../x`) is no profile either
        raise RunError(f"unknown profile {name!r}; valid profiles: {', '.join(profiles())}")
    where = f"params/{name}.yaml"
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_ProfileLoader)
    except UnicodeDecodeError as e:
        raise RunError(f"{where} is not UTF-8 text ({e}); save it as UTF-8") from None
    except yaml.YAMLError as e:
        raise RunError(f"{where} is not valid YAML: {e}") from None
    if not data:
        # an empty profile would run every notebook with its smoke defaults and write them over the profile's outputs
        raise RunError(f"{where} is empty; a profile needs at least a description (see params/smoke.yaml)")
    if not isinstance(data, dict):
        raise RunError(f"{where} must be a mapping with description, defaults and notebooks; got a "
                       f"{type(data).__name__}")
    unknown = set(data) - {"description", "defaults", "notebooks", "extends", "runs"}
    if unknown:
        raise RunError(f"{where}: unknown top-level keys {sorted(unknown)}; use description, defaults, notebooks "
                       "(and extends, runs)")
    for section in ("defaults", "notebooks"):
        if not isinstance(data.get(section) or {}, dict):
            raise RunError(f"{where}: {section} must be a mapping of key -> value, got {data[section]!r}")
    declared = {nb.stem: _declared(nb) for nb in notebooks()}
    runs = data.get("runs")
    if runs is not None:
        if not isinstance(runs, list) or not runs or not all(isinstance(r, str) for r in runs):
            raise RunError(f"{where}: runs must be a list of notebook names, got {runs!r}")
        strange = [r for r in runs if r not in declared]
        if strange:
            raise RunError(f"{where}: runs names unknown notebook(s) {strange}; notebooks: "
                           f"{', '.join(sorted(declared))}")
    if "extends" in data:
        data = _extended(data, where)
    for nb, own in (data.get("notebooks") or {}).items():
        if nb not in declared:
            raise RunError(f"{where}: section for unknown notebook {nb!r}; notebooks: {', '.join(sorted(declared))}")
        if not isinstance(own or {}, dict):
            raise RunError(f"{where}: notebooks.{nb} must be a mapping of parameter -> value, got {own!r}")
    everywhere = {k: v for params in declared.values() for k, v in params.items()}
    for key, value in (data.get("defaults") or {}).items():
        if key not in everywhere:
            raise RunError(f"{where}: defaults.{key} is declared by no notebook's parameters cell (a typo?); "
                           f"declared: {', '.join(sorted(everywhere))}")
        _check_value(f"{where}: defaults.{key}", key, value, everywhere[key])
    for nb, own in (data.get("notebooks") or {}).items():
        for key, value in (own or {}).items():
            if key in declared[nb]:
                _check_value(f"{where}: notebooks.{nb}.{key}", key, value, declared[nb][key])
    return data


def _extended(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A profile that `extends` another: the other's defaults and notebook sections, this one's over them, merged
    key by key (a notebook's section, and a recipe's dict: `{attention_dropout: 0.0}` changes that setting alone),
    this one's description and `runs`. Why: a profile that runs some notebooks again on another backbone keeps
    every size it does not change in one place, its base."""
    base_name = data["extends"]
    if not isinstance(base_name, str) or base_name not in profiles():
        raise RunError(f"{where}: extends must name another profile ({', '.join(profiles())}), got {base_name!r}")
    base = load_profile(base_name)
    if "extends" in _raw(base_name):
        raise RunError(f"{where}: extends {base_name}, which extends another profile; extend a plain one")
    notebooks_ = {nb: dict(own or {}) for nb, own in (base.get("notebooks") or {}).items()}
    for nb, own in (data.get("notebooks") or {}).items():
        notebooks_[nb] = _merged(notebooks_.get(nb, {}), own or {})
    return {**data, "defaults": _merged(base.get("defaults") or {}, data.get("defaults") or {}),
            "notebooks": notebooks_}


def _merged(base: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """`own` over `base`; a dict given in both merged key by key, one level down (a recipe's settings)."""
    out = dict(base)
    for key, value in own.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            out[key] = {**base[key], **value}
        else:
            out[key] = value
    return out


def profile_notebooks(spec: dict[str, Any]) -> list[Path]:
    """The notebooks a profile runs: those its `runs` lists, in the runner's order, or all of them."""
    runs = spec.get("runs")
    return [nb for nb in notebooks() if runs is None or nb.stem in runs]


def _declared(nb: Path) -> dict[str, Any]:
    """A notebook's parameters and their default values (None where the default is not a plain literal)."""
    import papermill as pm
    out = {}
    for key, info in pm.inspect_notebook(str(nb)).items():
        try:
            out[key] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            out[key] = None
    return out


def _check_value(where: str, key: str, value: Any, default: Any) -> None:
    """The value's kind against the notebook's default, then what `profile_checks` knows of the parameter."""
    if value is not None and default is not None and not _same_kind(value, default):
        raise RunError(f"{where} must be {_kind(default)} like the notebook's default {default!r}, got {value!r}")
    try:
        profile_checks.check(key, value)
    except (ValueError, TypeError, DataError) as e:
        raise RunError(f"{where}: {e}") from None


def _kind(v: Any) -> str:
    return {bool: "true or false", int: "a number", float: "a number", str: "a string", list: "a list",
            dict: "a mapping"}.get(type(v), type(v).__name__)


def _same_kind(value: Any, default: Any) -> bool:
    return _kind(value) == _kind(default)


def extending(base: str) -> list[str]:
    """The profiles that extend `base` (those that run some of its notebooks again on another backbone)."""
    return [name for name in profiles() if _raw(name).get("extends") == base]


def _raw(name: str) -> dict[str, Any]:
    """A profile's file as written (before `extends` is applied), {} where it is not a mapping; `load_profile`
    is what checks it."""
    raw = yaml.load((PARAMS_DIR / f"{name}.yaml").read_text(encoding="utf-8"), Loader=_ProfileLoader)
    return raw if isinstance(raw, dict) else {}


BACKBONE_PARAMETERS = ("backbone", "chinese_backbone")  # what a notebook's parameters cell calls its backbone


def notebook_backbone(spec: dict[str, Any], notebook: str) -> str | None:
    """The backbone a profile gives a notebook (its own section's, else the defaults', else the notebook's own
    default); None for a notebook that takes none."""
    declared = _declared(NOTEBOOK_DIR / f"{notebook}.ipynb") if (NOTEBOOK_DIR / f"{notebook}.ipynb").exists() else {}
    own = (spec.get("notebooks") or {}).get(notebook) or {}
    for key in BACKBONE_PARAMETERS:
        if key in declared:
            return own.get(key, (spec.get("defaults") or {}).get(key, declared[key]))
    return None
