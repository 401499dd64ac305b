"""Checks made before anything is spawned: binary lookup, ports, master key, pidfile."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path

import psutil
import pytest

from supervisor.litellm_binary import LiteLLMNotFound, find_litellm, litellm_environment
from supervisor.master_key import MASTER_KEY_VARIABLE, ensure_master_key
from supervisor.pidfile import PidFile
from supervisor.ports import PortInUse, ensure_port_free


def executable(path: Path) -> Path:
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_lookup_order(tmp_path: Path) -> None:
    explicit = executable(tmp_path / "explicit")
    from_env = executable(tmp_path / "from-env")
    project = executable(tmp_path / "project")
    path_dir = tmp_path / "bin"
    path_dir.mkdir()
    on_path = executable(path_dir / "litellm")
    environ = {"LITELLM_BIN": str(from_env), "PATH": str(path_dir)}
    assert find_litellm(str(explicit), environ, project) == explicit
    assert find_litellm(None, environ, project) == from_env
    assert find_litellm(None, {"PATH": str(path_dir)}, project) == project
    assert find_litellm(None, {"PATH": str(path_dir)}, tmp_path / "absent") == on_path


def test_not_found_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(LiteLLMNotFound, match="scripts/install-litellm"):
        find_litellm(None, {"PATH": str(tmp_path)}, tmp_path / "absent")


def test_an_explicit_path_that_is_not_executable_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    with pytest.raises(LiteLLMNotFound, match="--litellm-bin points at"):
        find_litellm(str(tmp_path / "plain"), {}, tmp_path / "absent")


def test_port_in_use_names_the_port_and_its_owner() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUse) as info:
            ensure_port_free("127.0.0.1", port, "LiteLLM", "--litellm-port")
    message = str(info.value)
    assert f"port {port} (LiteLLM) is already in use" in message
    assert f"pid {os.getpid()}" in message
    assert message.endswith("choose another port with --litellm-port")


def test_free_port_passes() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ensure_port_free("127.0.0.1", port, "memory proxy", "--memoryproxy-port")


def test_master_key_generated_only_when_unset() -> None:
    environ: dict[str, str] = {}
    assert ensure_master_key(environ) is True
    key = environ[MASTER_KEY_VARIABLE]
    assert key.startswith("sk-") and len(key) > 40
    assert ensure_master_key(environ) is False
    assert environ[MASTER_KEY_VARIABLE] == key
    other: dict[str, str] = {}
    ensure_master_key(other)
    assert other[MASTER_KEY_VARIABLE] != key


def test_stale_child_of_a_dead_launcher_is_stopped(tmp_path: Path) -> None:
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        pidfile = PidFile(tmp_path, 12345)
        pidfile.write(orphan.pid)
        dead_launcher = subprocess.Popen(["true"])
        dead_launcher.wait()
        record = pidfile.path.read_text().replace(
            f'"launcher_pid": {os.getpid()}', f'"launcher_pid": {dead_launcher.pid}'
        )
        pidfile.path.write_text(record)
        message = pidfile.stop_stale_child()
        assert message is not None and f"pid {orphan.pid}" in message
        assert orphan.wait(timeout=5) is not None
        assert not pidfile.path.exists()
    finally:
        orphan.kill()


def test_a_reused_pid_is_left_alone(tmp_path: Path) -> None:
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        pidfile = PidFile(tmp_path, 12346)
        pidfile.path.parent.mkdir(parents=True, exist_ok=True)
        created = psutil.Process(bystander.pid).create_time() - 100
        pidfile.path.write_text(
            f'{{"pid": {bystander.pid}, "create_time": {created}, "launcher_pid": 999999999}}'
        )
        assert pidfile.stop_stale_child() is None
        assert bystander.poll() is None
    finally:
        bystander.kill()


def test_litellms_environment_has_ours_and_the_nearest_dotenv_above_it(tmp_path: Path) -> None:
    """LiteLLM loads the first .env found upward from its own files (python-dotenv's
    load_dotenv() in litellm/__init__.py): its names count as set, values unread."""
    binary = tmp_path / "project" / ".venv-litellm" / "bin" / "litellm"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    (tmp_path / "project" / ".env").write_text(
        "export OPENAI_API_KEY=sk-1\nANTHROPIC_API_KEY = x\n# COMMENTED=1\nnot a line\n"
    )
    (tmp_path / ".env").write_text("FARTHER=1\n")
    names = litellm_environment(binary, {"PATH": "/bin"})
    assert names == {"PATH", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"}
    (tmp_path / "project" / ".env").unlink()
    assert litellm_environment(binary, {}) == {"FARTHER"}
