"""The shapes of secrets that memory never keeps: provider keys and tokens, JWTs, PEM
private keys, passwords in URLs, and secret-looking assignments.

Hand-written, anchored regular expressions, chosen over detect-secrets' plugins and
gitleaks' rules by measurement (README, "Redaction"): as precise on ordinary code and
prose, and tens of times faster. Speed comes from the shapes themselves: each expression
opens with a literal (`ghp_`, `eyJ`, `://`), which the regular expression engine finds as
fast as a substring search, so a text holding none of them costs one scan per rule.
`valid` rejects matches that only look alike (a word, a placeholder).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

_TOKEN_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
# `$NAME`, `${NAME}`, `%(name)s`, `{name}`, `{{ name }}`, `<name>`, or x-ed / starred out.
_PLACEHOLDER = re.compile(
    r"^(?:\$\{?[A-Za-z_]\w*\}?|%\(\w+\)s|\{\{?[\w .|]*\}\}?|<[^>]*>)$|x{4}|X{4}|\*{3}|\.{3}|…"
)
_PLACEHOLDER_PASSWORDS = frozenset({"password", "pass", "passwd", "pwd", "secret", "changeme"})
MIN_ASSIGNED_ENTROPY = 3.0  # bits per character of a value assigned to a secret's name


@dataclass(frozen=True)
class SecretRule:
    """`pattern`'s `lead` group (a token's public prefix) is shown in the marker; its
    `secret` group, when it has one, is what is replaced (else the whole match)."""

    kind: str  # the marker's and the metric's name for it
    pattern: re.Pattern[str]
    valid: Callable[[str], bool] | None = None  # of the secret, less its lead
    token: bool = False  # starts a token: no letter, digit, `_` or `-` just before it
    folded: bool = False  # `pattern` is lower case, run over the text in lower case
    after: str | None = None  # only in a text where a secret of this kind was found
    needles: tuple[str, ...] = ()  # when given, one must be in the (lower-case) text
    ignoring_case: re.Pattern[str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.folded:  # for a text whose lower case is not as long as itself
            object.__setattr__(
                self, "ignoring_case", re.compile(self.pattern.pattern, re.IGNORECASE)
            )


def starts_token(text: str, start: int) -> bool:
    """Nothing of a token just before `start`, or an escaped line break or tab (`\\n`
    in JSON text pasted as is)."""
    if start == 0 or text[start - 1] not in _TOKEN_CHARACTERS:
        return True
    return start >= 2 and text[start - 2] == "\\" and text[start - 1] in "nrt"


def character_classes(text: str) -> int:
    """How many of lower-case letters, upper-case letters and digits `text` has."""
    return (
        any(c.islower() for c in text)
        + any(c.isupper() for c in text)
        + any(c.isdigit() for c in text)
    )


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    length = len(text)
    return -sum(n / length * math.log2(n / length) for n in Counter(text).values())


def _mixed(text: str) -> bool:
    """Random, not a word: two classes of characters at least."""
    return character_classes(text) >= 2


def random_value(value: str) -> bool:
    """An assigned value that looks generated: letters and digits, no placeholder, and
    high entropy (a variable name, `changeme` or `test1234` is not redacted)."""
    return (
        not _PLACEHOLDER.search(value)
        and any(c.isdigit() for c in value)
        and any(c.isalpha() for c in value)
        and entropy(value) >= MIN_ASSIGNED_ENTROPY
    )


def _url_password(password: str) -> bool:
    return not (
        password.startswith("[secret:")
        or _PLACEHOLDER.search(password)
        or password.lower() in _PLACEHOLDER_PASSWORDS
        or set(password) <= {"*", "x", "X"}
    )


def _basic_credentials(value: str) -> bool:
    """`Basic …` is base64 of `user:password`."""
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded


def _bearer_or_basic(value: str) -> bool:
    return random_value(value) or _basic_credentials(value)


def _aws_secret(value: str) -> bool:
    """Mixed case (so a git commit's 40 hex digits never is one)."""
    return any(c.islower() for c in value) and any(c.isupper() for c in value)


def _token(kind: str, lead: str, body: str, minimum: int) -> SecretRule:
    """A token: `lead` (an expression opening with a literal), then `body` characters."""
    pattern = re.compile(rf"(?P<lead>{lead}){body}{{{minimum},512}}")
    return SecretRule(kind, pattern, _mixed, token=True)


# Order matters where two rules find the same text: the first names it.
BUILTIN_RULES: tuple[SecretRule, ...] = (
    SecretRule(
        "private-key",
        re.compile(
            r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
            r"(?:.{0,20000}?-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
            r"|(?:[A-Za-z0-9+/=\r\n]|\\[nr])*)",  # no END: the key's body, as far as it goes
            re.DOTALL,
        ),
    ),
    # A key's body opens with a letter or digit: `sk-----BEGIN…` is a dash rule, not a key.
    _token("anthropic-key", r"sk-ant-(?=[A-Za-z0-9])", r"[A-Za-z0-9_\-]", 20),
    _token(
        "openai-key", r"sk-(?:proj-|svcacct-|admin-|None-)?(?=[A-Za-z0-9])", r"[A-Za-z0-9_\-]", 20
    ),
    _token("google-api-key", r"AIza", r"[A-Za-z0-9_\-]", 35),
    SecretRule(
        "aws-access-key",
        re.compile(r"(?P<lead>AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}"),
        token=True,
    ),
    SecretRule(
        "aws-secret-key",  # no prefix: 40 base64 characters, beside an access key id
        re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])"),
        _aws_secret,
        after="aws-access-key",
    ),
    SecretRule(
        # ... or named as one just before it ("AWS secret access key is …", as a model
        # repeats it turns after the key id): `aws`, then `secret` or `key`, each within
        # 30 characters. Not across a `[`, nor after a `:`: a marker names none.
        "aws-secret-key",
        re.compile(
            r"(?<![:a-z0-9])aws[^\[\]]{0,30}?(?:secret|key)[^\[\]]{0,30}?"
            r"(?<![a-z0-9/+])(?P<secret>[a-z0-9/+]{40})(?![a-z0-9/+=])"
        ),
        _aws_secret,
        folded=True,
        needles=("aws",),
    ),
    _token("github-token", r"gh[pousr]_", r"[A-Za-z0-9]", 36),
    _token("github-token", r"github_pat_", r"[A-Za-z0-9_]", 50),
    _token("gitlab-token", r"gl(?:pat|dt|rt|ptt|soat|cbt)-", r"[A-Za-z0-9_.\-]", 20),
    _token("slack-token", r"xox[abposre]-", r"[A-Za-z0-9\-]", 10),
    _token("slack-token", r"xapp-", r"[A-Za-z0-9\-]", 10),
    SecretRule(
        "slack-webhook",
        re.compile(
            r"hooks\.slack\.com/(?:services|workflows|triggers)/(?P<secret>[A-Za-z0-9/_\-]{20,200})"
        ),
    ),
    _token("stripe-key", r"sk_(?:live|test)_", r"[A-Za-z0-9]", 16),
    _token("stripe-key", r"rk_(?:live|test)_", r"[A-Za-z0-9]", 16),
    _token("npm-token", r"npm_", r"[A-Za-z0-9]", 36),
    _token("huggingface-token", r"hf_", r"[A-Za-z]", 30),
    SecretRule(
        "jwt",
        re.compile(
            r"(?P<lead>eyJ)[A-Za-z0-9_\-]{8,4096}\.eyJ[A-Za-z0-9_\-]{8,8192}"
            r"(?:\.[A-Za-z0-9_\-]{1,4096})?"
        ),
        token=True,
    ),
    SecretRule(
        "url-password",
        re.compile(
            r"://[^\s:/?#@\"'<>\\]{1,256}:(?P<secret>[^\s/?#\"'<>\\]{1,256})@(?=[A-Za-z0-9\[])"
        ),
        _url_password,
    ),
    SecretRule(
        "auth-header",
        re.compile(r"b(?:earer|asic)\s+(?P<secret>[a-z0-9._~+/\-]{12,4096}=*)"),
        _bearer_or_basic,
        token=True,
        folded=True,
    ),
    SecretRule(
        "assigned-secret",
        re.compile(
            r"(?:p(?:ass(?:word|wd|phrase)|wd|rivate[_\-]?key)|secret(?:[_\-]?key)?|token"
            r"|a(?:pi|ccess|uth)[_\-]?key|credentials?)"
            r"\\?[\"'`]?\s*(?:=>|:=|=|:)\s*\\?[\"'`]?"
            r"(?P<secret>[^\s\"'`,;<>(){}\[\]\\]{8,256})"
        ),
        random_value,
        folded=True,
        # An expression opening with one of five common letters scans slowly: look first.
        needles=("pass", "pwd", "secret", "token", "key", "credential"),
    ),
)
