"""Writing the reference: staged in a temporary directory inside the output, then moved into place file by file, so a
failure (an unwritable directory, a full disk) leaves the previous reference as it was, never half of a new one.

The generator owns `openapi/`, `html/` (when it writes HTML) and the top-level Markdown pages that carry its banner;
files of those that a new run no longer produces (a group-version gone) are removed, anything else is left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from tmc.docsgen.markdown import GENERATED
from tmc.docsgen.render import HTML_DIR, OPENAPI_DIR


class OutputError(Exception):
    """The output directory cannot take the reference; nothing was changed."""


def _owned(output: Path, formats: Iterable[str]) -> set[str]:
    """Relative paths of files in `output` a run with `formats` may replace or remove."""
    formats = set(formats)
    found: set[str] = set()
    dirs = [OPENAPI_DIR] + ([HTML_DIR] if "html" in formats else [])
    for sub in dirs:
        root = output / sub
        if root.is_dir():
            found |= {p.relative_to(output).as_posix() for p in root.iterdir() if p.is_file()}
    if "markdown" in formats:
        for page in output.glob("*.md"):
            try:
                with page.open(encoding="utf-8") as f:
                    if f.readline().rstrip("\n") == GENERATED:
                        found.add(page.name)
            except (OSError, UnicodeDecodeError):
                continue
    return found


def write(output: Path, files: Mapping[str, bytes], formats: Iterable[str]) -> None:
    """Put `files` (relative path -> content) under `output`, replacing the previous run's."""
    if output.exists() and not output.is_dir():
        raise OutputError(f"--output {output} is not a directory")
    try:
        output.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmc-docs-", dir=output))
    except OSError as e:
        raise OutputError(f"cannot write to {output}: {e.strerror or e}") from None
    try:
        for rel, content in files.items():
            target = staging / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        stale = _owned(output, formats) - set(files)
        for rel in files:
            (output / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel, output / rel)
        for rel in sorted(stale):
            (output / rel).unlink(missing_ok=True)
    except OSError as e:
        raise OutputError(f"cannot write to {output}: {e.strerror or e}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
