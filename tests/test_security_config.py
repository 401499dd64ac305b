from __future__ import annotations

from pathlib import Path

import pytest

from memory_proxy.config import ConfigError, load_settings
from memory_proxy.config.security import SecuritySettings, allowed_host_names


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_by_default_no_origin_and_only_loopback_names_and_the_listening_address() -> None:
    settings = load_settings(None, environ={})
    assert settings.security == SecuritySettings()
    assert allowed_host_names(settings.security, settings.host) == {
        "127.0.0.1",
        "localhost",
        "[::1]",
    }
    assert "0.0.0.0" in allowed_host_names(settings.security, "0.0.0.0")
    assert "[fe80::1]" in allowed_host_names(settings.security, "FE80:0::1")


def test_origins_and_names_are_read_as_browsers_send_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "security:\n"
        "  allowed_origins: [HTTP://LocalHost:3000, 'http://app.lan:80', https://a.example:443,"
        " chrome-extension://abcdef]\n"
        "  allowed_hosts: [My-Box.LAN, '::1', '[2001:db8::7]', 192.0.2.4]\n",
    )
    security = load_settings(path, environ={}).security
    assert security.allowed_origins == {
        "http://localhost:3000",
        "http://app.lan",  # browsers leave the default port out
        "https://a.example",
        "chrome-extension://abcdef",
    }
    assert security.allowed_hosts == ("my-box.lan", "[::1]", "[2001:db8::7]", "192.0.2.4")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("security:\n  allowed_origins: http://a\n", "security.allowed_origins: expected a list"),
        ("security:\n  allowed_origins: ['*']\n", "allowed_origins[0]: '*' would let any web"),
        ("security:\n  allowed_origins: ['null']\n", "allowed_origins[0]: 'null' would let"),
        (
            "security:\n  allowed_origins: [http://a.lan, 'http://a.lan:3000/']\n",
            "allowed_origins[1]: expected scheme://host[:port] with no path",
        ),
        ("security:\n  allowed_origins: [localhost:3000]\n", "allowed_origins[0]: expected"),
        ("security:\n  allowed_origins: [3000]\n", "allowed_origins[0]: expected an origin"),
        ("security:\n  allowed_hosts: [box.lan:8764]\n", "allowed_hosts[0]: expected a host"),
        ("security:\n  allowed_hosts: ['*.lan']\n", "allowed_hosts[0]: expected a host"),
        ("security:\n  allowed_hosts: ['http://box']\n", "allowed_hosts[0]: expected a host"),
        ("security:\n  allowed_hosts: box.lan\n", "security.allowed_hosts: expected a list"),
    ],
)
def test_errors_name_the_key_and_the_file(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value).startswith(f"{path}: security.")
    assert expected in str(info.value)


def test_unknown_keys_are_named_with_the_closest_known_one(tmp_path: Path) -> None:
    path = write(tmp_path, "security:\n  allowed_origin: [http://a.lan]\n")
    assert load_settings(path, environ={}).warnings == (
        f"{path}: security.allowed_origin: unknown key, ignored (did you mean allowed_origins?)",
    )
