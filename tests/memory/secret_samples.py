"""Fake secrets of every kind the redactor knows, none of them real. Each is written in
two pieces so that no secret scanner mistakes this file for a leak. And the searches for
the issue's seven where memory keeps or shows text."""

from __future__ import annotations

from pathlib import Path

from tests.stores.file_traces import TAIL, traces

OPENAI_KEY = "sk-" + "proj-Zq4nV8xW2yR6tU0iO3pA7sD1fG5hJ9kL2zX6cV0bN4mQ8wE1rTy5uI7oP3aS"
LEGACY_OPENAI_KEY = "sk-" + "Fq7Lr2Vx9Kp4Nz6Wb3Hc8Jd1Ms5Ty0Ge2Ua7Io4Pe9Qw1Rt"
ANTHROPIC_KEY = "sk-" + "ant-api03-Hq3Wn8Rp2Lx6Vt0Zb4Mc9Kd1Jf5Gs7Ya3Ue8Io2Pw6Qr0Tn4Bm"
GOOGLE_KEY = "AIza" + "SyB3kR9vL2mQ7xT4wN8pZ1cF6hJ0dG5sA2e"
AWS_ACCESS_KEY_ID = "AKIA" + "Q3EGUKRT4XAMPL7Z"
AWS_SECRET_ACCESS_KEY = "Zk3Nq8Lw2Vx7Rt5Yp1Ms9Hd4" + "Gf6Jb0Cc2Ee8Aa1QwErTyU"[:16]
GITHUB_TOKEN = "ghp_" + "R2d2C3poBb8Yy7Tt6Uu5Ii4Oo3Pp2Aa1Ss0Dd9"
GITHUB_PAT = "github_pat_" + "11AQ3EGUK0Rt4Xam7ZpL2w_Vx9Kp4Nz6Wb3Hc8Jd1Ms5Ty0Ge2Ua7Io4Pe9Qw1Rt3Yu5"
GITLAB_TOKEN = "glpat-" + "Xq7Lr2Vx9Kp4Nz6Wb3Hc"
SLACK_TOKEN = "xoxb-" + "120398475612-4820193847561-Hq3Wn8Rp2Lx6Vt0Zb4Mc9Kd1"
STRIPE_KEY = "sk_live_" + "51Hq3Wn8Rp2Lx6Vt0Zb4Mc9Kd"
NPM_TOKEN = "npm_" + "Hq3Wn8Rp2Lx6Vt0Zb4Mc9Kd1Jf5Gs7Ya3Ue8I"
HUGGINGFACE_TOKEN = "hf_" + "HqWnRpLxVtZbMcKdJfGsYaUeIoPwQrTnBm"
JWT = (
    "eyJ" + "hbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiJhbGljZUBleGFtcGxlLmNvbSIsImV4cCI6MTgwMDAwMDAwMH0"
    ".Hq3Wn8Rp2Lx6Vt0Zb4Mc9Kd1Jf5Gs7Ya3Ue8Io2Pw6"
)
PEM_BODY = (
    "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
    "KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm"
)
PRIVATE_KEY = "-----BEGIN RSA " + f"PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"
DATABASE_PASSWORD = "Hx7kq29" + "LmWv"
DATABASE_URL = f"postgres://shop:{DATABASE_PASSWORD}@db.internal:5432/shop"

# The seven: a project key, an AWS pair, a GitHub token, a PEM key, a database
# URL's password and a JWT.
SEVEN = {
    "openai-key": OPENAI_KEY,
    "aws-access-key": AWS_ACCESS_KEY_ID,
    "aws-secret-key": AWS_SECRET_ACCESS_KEY,
    "github-token": GITHUB_TOKEN,
    "private-key": PRIVATE_KEY,
    "url-password": DATABASE_URL,
    "jwt": JWT,
}


def distinctive_parts(secret: str) -> list[str]:
    """What must not be found where a secret was kept: its secret part, as written and in
    lower case (the full-text index keeps words in lower case)."""
    if secret == DATABASE_URL:
        parts = [DATABASE_PASSWORD]
    elif secret == PRIVATE_KEY:
        parts = PEM_BODY.split("\n")
    else:
        parts = [secret]
    return parts + [part.lower() for part in parts]


def secrets_in(shown: str) -> list[str]:
    """The kinds of the seven whose secret part `shown` holds."""
    return [
        kind
        for kind, secret in SEVEN.items()
        if any(part in shown for part in distinctive_parts(secret))
    ]


def secrets_in_file(database: Path) -> list[str]:
    """The kinds of the seven with a piece of their secret part in the SQLite file or its
    -wal, plainly or packed."""
    return [
        kind
        for kind, secret in SEVEN.items()
        if any(
            traces(database, piece) for part in distinctive_parts(secret) for piece in _pieces(part)
        )
    ]


SHARED_AT_MOST = 3  # letters a short word shares with the full-text index's word before it


def _pieces(part: str) -> set[str]:
    """`part` cut in pieces that cover it, of TAIL characters (fewer for a short part):
    the full-text index keeps a word after the first letters it shares with the word
    before it, and traces() looks for a token's last TAIL characters."""
    size = min(TAIL, len(part) - SHARED_AT_MOST)
    starts = [*range(0, len(part) - size + 1, size), len(part) - size]
    return {part[start : start + size] for start in starts}
