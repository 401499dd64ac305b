"""The client SDKs the tests drive, `anthropic` and `openai`, imported by a test's first
use of one, not by pytest collecting the modules that name them: `from tests.sdks import
anthropic, openai` where a module would `import anthropic, openai`.

Every pytest-xdist worker imports every test module before it runs any test, and the
SDKs cost about 2 s of CPU to import (anthropic's types alone 1.1 s): each worker paid
it at the start of a run, though only those that run a test using them need it. With
the MCP SDK imported by its first client (tests/api/mcp_server/support.py), collecting
the suite takes 2.3-2.7 s of user CPU in a process instead of 4.7-5.1 s.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any


class ImportedOnFirstUse(ModuleType):
    """Stands for the module of its name until a public name is read from it, then
    imports it and answers with the module's own objects (so `pytest.raises(openai.
    NotFoundError)` and isinstance hold). Private and dunder names are not looked for:
    pytest reads some from every name of a test module as it collects (`__wrapped__`,
    `_mock_name`), and no SDK's API starts with "_"."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(importlib.import_module(self.__name__), name)


if TYPE_CHECKING:
    import anthropic as anthropic
    import openai as openai
else:
    anthropic = ImportedOnFirstUse("anthropic")
    openai = ImportedOnFirstUse("openai")
