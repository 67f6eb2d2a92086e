"""What an executed notebook keeps when it is committed: the repository's paths, not the machine's, and its streams
as a reader sees them."""
from __future__ import annotations

from pathlib import Path

from pairlib.core.artifacts import shown


def tidy_executed(executed: Path, source: Path, final: Path) -> None:
    """Papermill records the absolute paths it read and wrote; an executed notebook that is committed names the
    repository's paths instead (a notebook written outside the repository keeps its own). Its streams are stored
    as a reader sees them (`tidy_streams`)."""
    import nbformat
    nb = nbformat.read(executed, as_version=4)
    record = nb.metadata.get("papermill", {})
    record.update(input_path=shown(source), output_path=shown(final))
    tidy_streams(nb)
    drop_widgets(nb)
    nbformat.write(nb, executed)


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def drop_widgets(nb) -> None:
    """Progress-bar widgets (`datasets`' "Saving the dataset (0/1 shards)") are saved with a state JupyterLab cannot
    restore, so a reader sees each stuck at 0%: an executed notebook keeps none of them, nor the widget state."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)


def overwrite_carriage_returns(text: str) -> str:
    """What a terminal (and JupyterLab) shows for `text`: after a `\r` the line is written over from its start."""
    lines = []
    for line in text.replace("\r\n", "\n").split("\n"):
        shown_line = ""
        for part in line.split("\r"):
            shown_line = part + shown_line[len(part):]
        lines.append(shown_line)
    return "\n".join(lines)


def tidy_streams(nb) -> None:
    """Papermill saves every write to stdout/stderr as its own output, so a progress bar updated every 30 s over
    hours left thousands of lines in git that Lab draws as one line. Consecutive writes to one stream become one
    output holding what Lab shows."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        merged: list = []
        for out in cell.get("outputs", []):
            if (out.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                    and merged[-1].get("name") == out.get("name")):
                merged[-1]["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                out["text"] = overwrite_carriage_returns(out["text"])
        cell.outputs = merged
