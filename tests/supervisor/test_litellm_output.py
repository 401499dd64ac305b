"""What of LiteLLM's console output start-proxies shows, on lines LiteLLM 1.106.2 printed
here: at start with the shipped config, then for a request to a model without its key."""

from __future__ import annotations

from supervisor.litellm_output import LiteLLMOutputFilter

BOLD, RED, GREEN, RESET = "\x1b[1;37m", "\x1b[1;31m", "\x1b[32m", "\x1b[0m"
WARNING = (
    "05:11:59 - LiteLLM Proxy:WARNING: login_throttle.py:126 - trusted_proxy_ranges is not set"
)
ERROR = (
    "05:12:05 - LiteLLM Proxy:ERROR: common_request_processing.py:1687 - Exception occured - "
    "litellm.InternalServerError: OpenAIException - Missing credentials."
)
START_UP = [
    "INFO:     Started server process [2662]",
    "INFO:     Waiting for application startup.",
    "",
    "   ██╗     ██╗████████╗███████╗██╗     ██╗     ███╗   ███╗",
    "   ██║     ██║╚══██╔══╝██╔════╝██║     ██║     ████╗ ████║",
    "   ╚══════╝╚═╝   ╚═╝   ╚══════╝╚══════╝╚══════╝╚═╝     ╚═╝",
    "",
    f"{BOLD}#------------------------------------------------------------#{RESET}",
    f"{BOLD}#           'I get frustrated when the product...'            #{RESET}",
    f"{BOLD}#        https://github.com/BerriAI/litellm/issues/new        #{RESET}",
    " Thank you for using LiteLLM! - Krrish & Ishaan",
    f"{RED}Give Feedback / Get Help: https://github.com/BerriAI/litellm/issues/new{RESET}",
    WARNING,
    f"{GREEN}LiteLLM: Proxy initialized with Config, Set models:{RESET}",
    f"{GREEN}    demo{RESET}",
    f"{GREEN}    gpt-4o{RESET}",
    "INFO:     Application startup complete.",
    "INFO:     Uvicorn running on http://127.0.0.1:28765 (Press CTRL+C to quit)",
    'INFO:     127.0.0.1:56702 - "GET /health/readiness HTTP/1.1" 200 OK',
    "05:12:01 - LiteLLM Router:INFO: router.py:812 - Routing strategy: simple-shuffle",
]
FAILED_REQUEST = [
    ERROR,
    "",
    "LiteLLM: model group 'gpt-4o' failed with the error above. No fallback was attempted.",
    "Traceback (most recent call last):",
    '  File "/venv/litellm/llms/openai/openai.py", line 959, in acompletion',
    "    openai_aclient: AsyncOpenAI = self._get_openai_client(",
    "                                  ^^^^^^^^^^^^^^^^^^^^^^^^",
    "openai.OpenAIError: Missing credentials.",
    "",
    "During handling of the above exception, another exception occurred:",
    "",
    "Traceback (most recent call last):",
    '  File "/venv/litellm/main.py", line 687, in acompletion',
    "    raise exception_type(",
    "litellm.exceptions.InternalServerError: OpenAIException - Missing credentials.",
    'INFO:     127.0.0.1:56708 - "POST /v1/chat/completions HTTP/1.1" 500 Internal Server Error',
    "ERROR:    Exception in ASGI application",
]


def kept(lines: list[str]) -> list[str]:
    output = LiteLLMOutputFilter()
    return [line for line in lines if output.keep(line)]


def test_the_banner_and_routine_info_lines_are_dropped_its_warnings_kept() -> None:
    assert kept(START_UP) == [WARNING]


def test_a_failure_keeps_its_error_and_exception_lines_not_the_frames() -> None:
    assert kept(FAILED_REQUEST) == [
        ERROR,
        "LiteLLM: model group 'gpt-4o' failed with the error above. No fallback was attempted.",
        "openai.OpenAIError: Missing credentials.",
        "litellm.exceptions.InternalServerError: OpenAIException - Missing credentials.",
        "ERROR:    Exception in ASGI application",
    ]


def test_lines_it_does_not_know_are_shown() -> None:
    unknown = ["fatal: cannot open config.yaml", "  an indented detail", "DEBUG: something"]
    assert kept(unknown) == unknown
