from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from memory_proxy.cli import main


def test_invalid_config_exits_2_before_serving(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "user_id_mappings:\n  header_patterns:\n    - {header: a, pattern: '[', user_id: x}\n"
    )
    result = CliRunner().invoke(main, ["--config", str(config), "--port", "1"])
    assert result.exit_code == 2
    assert (
        f"{config}: user_id_mappings.header_patterns[0].pattern: invalid regular expression"
        in result.output
    )


def test_environment_value_errors_name_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("")
    result = CliRunner().invoke(main, ["--config", str(config)], env={"PROXY_PORT": "http"})
    assert result.exit_code == 2
    assert "environment variable PROXY_PORT: proxy.port" in result.output
