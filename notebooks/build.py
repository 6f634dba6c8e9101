"""Build the notebooks (NN_name.ipynb) from their readable sources (src/NN_name.py).

The sources are plain Python in the "percent" cell format that VS Code,
PyCharm and jupytext also read:

    # %% [markdown]
    # # A heading
    # Some text.

    # %%
    print("a code cell")

A markdown cell's lines lose their leading "# ".  The .ipynb files are
committed without outputs; tests/test_notebooks.py checks they match their
sources, so edit the source, then run:

    .venv/bin/python notebooks/build.py           # rewrite every .ipynb
    .venv/bin/python notebooks/build.py --check   # exit 1 if one is out of date
"""

import glob
import os
import re
import sys

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
MARKER = re.compile(r"^# %%(?P<markdown> \[markdown\])?\s*$")


def cells_of(source: str) -> list[tuple[str, str]]:
    """[(kind, text)] of a percent-format source; text before the first marker is ignored (a docstring)."""
    cells: list[tuple[str, list[str]]] = []
    for line in source.splitlines():
        match = MARKER.match(line)
        if match:
            cells.append(("markdown" if match["markdown"] else "code", []))
        elif cells:
            kind, lines = cells[-1]
            if kind == "markdown":
                line = line[2:] if line.startswith("# ") else line.lstrip("#")
            lines.append(line)
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells if "".join(lines).strip()]


def notebook_of(source_path: str) -> nbformat.NotebookNode:
    with open(source_path) as f:
        cells = cells_of(f.read())
    notebook = nbformat.v4.new_notebook()
    notebook.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3 (minidocker)",
                                        "language": "python"},
                         "language_info": {"name": "python"}}
    for number, (kind, text) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        cell.id = f"c{number:03d}"  # stable ids: a rebuild of an unchanged source changes nothing
        notebook.cells.append(cell)
    return notebook


def target_of(source_path: str) -> str:
    return os.path.join(HERE, os.path.basename(source_path).removesuffix(".py") + ".ipynb")


def sources() -> list[str]:
    return sorted(glob.glob(os.path.join(HERE, "src", "[0-9][0-9]_*.py")))


def rendered(source_path: str) -> str:
    return nbformat.writes(notebook_of(source_path)) + "\n"


def main(argv: list[str]) -> int:
    stale = []
    for source in sources():
        target, text = target_of(source), rendered(source)
        current = open(target).read() if os.path.exists(target) else None
        if current != text:
            stale.append(os.path.relpath(target))
            if "--check" not in argv:
                with open(target, "w") as f:
                    f.write(text)
    if "--check" in argv and stale:
        print(f"out of date (run notebooks/build.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    for path in stale:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
