"""Finding the litellm executable: --litellm-bin, $LITELLM_BIN, the project's LiteLLM
venv, then PATH; and what its environment will hold. LiteLLM lives in its own virtual
environment and is never imported."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PROJECT_VENV_BIN = PROJECT_ROOT / ".venv-litellm" / "bin" / "litellm"
INSTALL_COMMAND = f"{PROJECT_ROOT / 'scripts' / 'install-litellm'}"


# A variable set by a .env file (python-dotenv's syntax, the value unread).
_DOTENV_NAME = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)


class LiteLLMNotFound(Exception):
    pass


def find_litellm(
    explicit: str | None,
    environ: Mapping[str, str] | None = None,
    project_bin: Path = PROJECT_VENV_BIN,
) -> Path:
    environ = os.environ if environ is None else environ
    for source, candidate in (
        ("--litellm-bin", explicit),
        ("LITELLM_BIN", environ.get("LITELLM_BIN")),
    ):
        if candidate:
            path = Path(candidate)
            if not (path.is_file() and os.access(path, os.X_OK)):
                raise LiteLLMNotFound(f"{source} points at {path}, which is not an executable")
            return path
    if project_bin.is_file() and os.access(project_bin, os.X_OK):
        return project_bin
    on_path = shutil.which("litellm", path=environ.get("PATH"))
    if on_path:
        return Path(on_path)
    raise LiteLLMNotFound(
        "litellm was not found (looked at --litellm-bin, $LITELLM_BIN, "
        f"{project_bin} and PATH). Install the pinned version with:\n  {INSTALL_COMMAND}"
    )


def litellm_environment(binary: Path, environ: Mapping[str, str]) -> frozenset[str]:
    """The names of the variables LiteLLM started from `binary` with `environ` will have:
    those, and the ones of the first `.env` above it, which LiteLLM loads at start
    (python-dotenv's `load_dotenv()` in litellm/__init__.py and its proxy's CLI looks
    upward from their own directory: the virtual environment's, then the project's)."""
    names = set(environ)
    for directory in binary.resolve().parents:
        dotenv = directory / ".env"
        if dotenv.is_file():
            with contextlib.suppress(OSError):  # unreadable: LiteLLM reads nothing either
                names.update(_DOTENV_NAME.findall(dotenv.read_text(errors="replace")))
            break
    return frozenset(names)
