"""scripts/lib.sh's installs, with a stand-in Python whose pip prints as much as this
machine's does (its pip configuration warns hundreds of times): one line on the console,
pip's output in a log, and the log named, with its end, when the install fails."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib.sh"
PIP_LINES = 300
FAKE_PIP = f"""#!/bin/sh
[ "$3" = "--upgrade" ] && exit 0  # pip install --quiet --upgrade pip
for i in $(seq {PIP_LINES}); do
    echo "WARNING: Location '/opt/wheels' is ignored: it is either a non-existing path"
done
echo "Successfully installed alpha-1.0 beta-2.0 gamma-3.0"
[ -z "$FAKE_PIP_FAILS" ] || {{ echo "ERROR: No matching distribution found for delta"; exit 1; }}
"""
FAKE_PYTHON = f"""#!/bin/sh
# python3 -m venv DIR: a venv whose pip is the stand-in.
mkdir -p "$3/bin"
printf '#!/bin/sh\\n' > "$3/bin/python"
cat > "$3/bin/pip" <<'PIP'
{FAKE_PIP}PIP
chmod +x "$3/bin/python" "$3/bin/pip"
"""


def install(tmp_path: Path, *, fails: bool = False) -> subprocess.CompletedProcess[str]:
    python = tmp_path / "python3"
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    sources = tmp_path / "requirements.txt"
    sources.write_text("alpha\n")
    script = f'source "{LIB}"; install_once "$VENV" test "{sources}" "a test venv" -r "{sources}"'
    environment = {"PATH": "/usr/bin:/bin", "PYTHON": str(python), "VENV": str(tmp_path / "venv")}
    if fails:
        environment["FAKE_PIP_FAILS"] = "1"
    return subprocess.run(
        ["bash", "-c", f"set -euo pipefail; {script}"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=60,
    )


def test_an_install_prints_one_line_and_keeps_pip_s_output_in_a_log(tmp_path: Path) -> None:
    log = tmp_path / "venv" / "install.log"
    first = install(tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout == ""
    (line,) = first.stderr.splitlines()
    summary = r"==> Installing venv \(a test venv\)\.\.\. done: 3 packages in \d+ s"
    assert re.fullmatch(summary + rf" \(log: {re.escape(str(log))}\)", line)
    assert log.read_text().count("WARNING: Location") == PIP_LINES

    again = install(tmp_path)
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")  # built: silent


def test_a_failed_install_names_its_log_and_shows_how_it_ends(tmp_path: Path) -> None:
    log = tmp_path / "venv" / "install.log"
    failed = install(tmp_path, fails=True)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert lines[0] == f"==> Installing venv (a test venv)... failed. The end of its log, {log}:"
    assert lines[-1] == "ERROR: No matching distribution found for delta"
    assert len(lines) <= 16
    assert not (tmp_path / "venv" / ".built-test").exists()  # tried again next time
