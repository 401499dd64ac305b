"""No module of the product over 400 lines (issue 19): a module that grows past it holds
more than one responsibility, and is split by concern before it grows further."""

from __future__ import annotations

from pathlib import Path

import memory_proxy

MAX_LINES = 400


def test_no_module_is_over_the_limit() -> None:
    package = Path(memory_proxy.__file__).parent
    sizes = {
        str(module.relative_to(package)): len(module.read_text().splitlines())
        for module in package.rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}
