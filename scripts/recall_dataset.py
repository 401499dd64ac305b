"""A synthetic, deterministic recall test set for scripts/bench_recall.py.

Developer facts ("the staging database runs on port 5433") are planted in past sessions of
several users and projects, among filler exchanges that share their vocabulary. Each fact
comes with two questions: one in the fact's own words, one paraphrased by hand (written
before any measurement, and not tuned to the index). The same kind of fact is planted in
other projects and users with other values, so a hit from the wrong place shows up as
leakage rather than as a lucky match.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from memory_proxy.records.memory import MemoryRecord, memory_id

PEOPLE = ["Alice", "Bob", "Priya", "Chen", "Marta", "Kofi", "Yuki", "Lars"]

# (fact exchange, question in the fact's own words, paraphrased question); {x} = the value.
FACTS: list[tuple[str, str, str, list[str]]] = [
    (
        "User: heads up, the staging database runs on port {x} now.\n"
        "Assistant: Got it, I'll point staging database connections at port {x}.",
        "What port does the staging database run on?",
        "Which port do I connect to for the pre-prod Postgres instance?",
        ["5433", "5434", "6543", "15432", "5440"],
    ),
    (
        "User: how do we deploy this?\nAssistant: You deploy with `{x}` from the repository "
        "root; it builds, tags and pushes the release.",
        "How do we deploy?",
        "What's the command to ship a new version to production?",
        ["make release", "./scripts/ship.sh", "just deploy", "npm run release", "task publish"],
    ),
    (
        "User: {p} prefers {x} for indentation in this codebase.\n"
        "Assistant: Understood, I'll format code with {x} from now on.",
        "What does {p} prefer for indentation?",
        "How should I lay out whitespace in files {p} reviews?",
        ["tabs", "two spaces", "four spaces"],
    ),
    (
        "User: our CI runs on {x}, and the pipeline takes about twelve minutes.\n"
        "Assistant: Thanks, I'll keep the {x} pipeline time in mind when suggesting checks.",
        "Where does our CI run?",
        "Which build service executes our automated tests?",
        ["GitHub Actions", "GitLab CI", "Buildkite", "CircleCI", "Jenkins"],
    ),
    (
        "User: we pinned Python {x} for the backend service.\n"
        "Assistant: OK, I'll avoid features newer than Python {x} in backend code.",
        "Which Python version did we pin for the backend service?",
        "What interpreter release is the server side locked to?",
        ["3.10", "3.11", "3.12"],
    ),
    (
        "User: {x} is on call this week for the payments service.\n"
        "Assistant: Noted, I'll route payments alerts to {x}.",
        "Who is on call for the payments service?",
        "Who should I page if billing breaks tonight?",
        PEOPLE,
    ),
    (
        "User: the public API is rate limited to {x} requests per minute per token.\n"
        "Assistant: Then the client should back off after {x} requests per minute.",
        "What is the public API rate limit per token?",
        "How many calls a minute can one key make against our external endpoints?",
        ["100", "250", "600", "1000"],
    ),
    (
        "User: please use {x} for logging in new modules.\n"
        "Assistant: Will do, new modules will log through {x}.",
        "What should new modules use for logging?",
        "Which library do we write log lines with?",
        ["structlog", "loguru", "the standard logging module", "zap", "pino"],
    ),
    (
        "User: feature flags live in {x}.\n"
        "Assistant: Right, I'll check {x} before toggling any feature flag.",
        "Where do feature flags live?",
        "Where can I switch an experimental option on or off?",
        ["LaunchDarkly", "Unleash", "Flagsmith", "a YAML file in config/flags"],
    ),
    (
        "User: run the test suite with `{x}`, not plain pytest.\n"
        "Assistant: Understood: the test suite runs with `{x}`.",
        "How do I run the test suite?",
        "What command checks that nothing broke before I push?",
        ["pytest -n auto", "make test", "tox -e py311", "npm test", "go test ./..."],
    ),
    (
        "User: schema migrations are managed with {x}.\n"
        "Assistant: OK, I'll write schema migrations as {x} revisions.",
        "What manages schema migrations?",
        "Which tool do we use to change table definitions in the database?",
        ["Alembic", "Flyway", "Liquibase", "golang-migrate", "Prisma Migrate"],
    ),
    (
        "User: branch names follow the pattern {x}.\nAssistant: I'll name branches like {x}.",
        "What pattern do branch names follow?",
        "How should I call a new git branch?",
        ["feature/TICKET-slug", "initials/topic", "fix/issue-number"],
    ),
    (
        "User: the Redis cache TTL for session tokens is {x} seconds.\n"
        "Assistant: Noted, session tokens expire from the Redis cache after {x} seconds.",
        "What is the Redis cache TTL for session tokens?",
        "How long do login tokens stay cached before they expire?",
        ["300", "900", "3600"],
    ),
    (
        "User: every pull request needs {x} approving reviews before merge.\n"
        "Assistant: Got it, {x} approvals are required to merge a pull request.",
        "How many approving reviews does a pull request need?",
        "What's required before I can land a PR?",
        ["one", "two", "three"],
    ),
    (
        "User: production is deployed in the {x} AWS region.\n"
        "Assistant: OK, I'll assume {x} for production resources.",
        "Which AWS region is production deployed in?",
        "Where are our live servers hosted geographically?",
        ["eu-west-1", "us-east-2", "ap-southeast-1", "eu-central-1"],
    ),
    (
        "User: the dashboard frontend is built with {x}.\n"
        "Assistant: Understood, I'll write dashboard components for {x}.",
        "What is the dashboard frontend built with?",
        "Which UI framework powers the admin panel?",
        ["React with Vite", "SvelteKit", "Vue 3", "Next.js", "Angular"],
    ),
    (
        "User: secrets are stored in {x}; never commit them to the repo.\n"
        "Assistant: Noted, secrets come from {x} and stay out of the repo.",
        "Where are secrets stored?",
        "Where do we keep API keys and passwords?",
        ["Vault", "AWS Secrets Manager", "1Password", "SOPS-encrypted files"],
    ),
    (
        "User: all timestamps in the database are stored in {x}.\n"
        "Assistant: I'll convert timestamps to {x} before writing them.",
        "Which timezone are database timestamps stored in?",
        "What clock do we save dates and times with?",
        ["UTC", "Europe/Berlin", "America/New_York"],
    ),
    (
        "User: architecture docs are kept in {x}.\n"
        "Assistant: OK, I'll link architecture docs in {x}.",
        "Where are the architecture docs kept?",
        "Where can I read about how the system is designed?",
        ["Notion", "Confluence", "the docs/ folder", "the GitHub wiki"],
    ),
    (
        "User: the maximum upload size for attachments is {x}.\n"
        "Assistant: I'll validate attachments against the {x} upload limit.",
        "What is the maximum upload size for attachments?",
        "How big can a file be when users attach it?",
        ["10 MB", "25 MB", "100 MB"],
    ),
    (
        "User: exceptions are reported to {x}.\n"
        "Assistant: Right, unhandled exceptions will go to {x}.",
        "Where are exceptions reported?",
        "Which service collects crash reports from the app?",
        ["Sentry", "Rollbar", "Bugsnag", "Honeybadger"],
    ),
    (
        "User: background jobs go through {x}.\n"
        "Assistant: OK, I'll enqueue background jobs on {x}.",
        "What do background jobs go through?",
        "Which message broker handles our async work?",
        ["RabbitMQ", "Kafka", "SQS", "NATS"],
    ),
    (
        "User: lint everything with {x} before committing.\n"
        "Assistant: Sure, I'll run {x} before every commit.",
        "What do we lint with before committing?",
        "Which static checker must pass before I push code?",
        ["ruff", "eslint with airbnb rules", "golangci-lint", "flake8"],
    ),
    (
        "User: sprint planning is every {x} at 10:30.\n"
        "Assistant: Noted, sprint planning on {x} at 10:30.",
        "When is sprint planning?",
        "On which weekday do we plan the next iteration?",
        ["Monday", "Tuesday", "Thursday"],
    ),
    (
        "User: {x} owns the auth service, ask them before changing it.\n"
        "Assistant: Understood, I'll check with {x} before touching the auth service.",
        "Who owns the auth service?",
        "Who's the right person to talk to about login code changes?",
        PEOPLE,
    ),
    (
        "User: container images are pushed to {x}.\nAssistant: I'll tag container images for {x}.",
        "Where are container images pushed?",
        "Where do our Docker builds get uploaded?",
        ["ghcr.io/acme", "registry.gitlab.com/acme", "ECR in the shared account"],
    ),
    (
        "User: the coverage threshold is {x} percent; CI fails below it.\n"
        "Assistant: Got it, I'll keep coverage above {x} percent.",
        "What is the coverage threshold?",
        "How much of the code must the tests exercise for the build to pass?",
        ["80", "85", "90"],
    ),
    (
        "User: the API is versioned with {x}.\n"
        "Assistant: OK, new endpoints will use {x} for versioning.",
        "How is the API versioned?",
        "How do clients pick which revision of our endpoints they get?",
        ["a /v2 URL prefix", "an Accept-Version header", "date-based versions"],
    ),
    (
        "User: to start the local dev environment, run `{x}`.\n"
        "Assistant: Thanks, `{x}` starts the local dev environment.",
        "How do I start the local dev environment?",
        "What do I type to bring the stack up on my laptop?",
        ["docker compose up", "tilt up", "make dev", "devbox shell"],
    ),
    (
        "User: data access goes through {x}, no raw SQL in handlers.\n"
        "Assistant: Understood: {x} for data access, no raw SQL in handlers.",
        "What does data access go through?",
        "Can I write plain queries in request handlers?",
        ["SQLAlchemy 2.0", "the Django ORM", "Prisma", "GORM"],
    ),
]


def _alternatives(text: str) -> list[str]:
    return text.split("|")


_TOPICS = _alternatives(
    "database|cache|queue consumer|public API|frontend|CI pipeline|test suite|docker image|"
    "auth service|payments service|logger|migration|feature flag|staging environment|"
    "production cluster|session token refresh|pull request|release branch|dashboard|"
    "upload handler|cron job|search endpoint|websocket server|config loader"
)
_PROBLEMS = _alternatives(
    "is slow today|keeps timing out|throws a KeyError|returns a 502|uses too much memory|"
    "fails intermittently|needs a refactor|has a flaky test|logs too much|"
    "broke after the upgrade|leaks file descriptors|deadlocks under load"
)
_FIXES = _alternatives(
    "add an index on the lookup column|raise the timeout and add a retry with backoff|"
    "check for the missing key before reading it|look at the upstream health check|"
    "stream the rows instead of loading them all|pin the dependency to the last good version|"
    "split the function into smaller pieces|mock the clock in the test|"
    "lower the log level to warning|close the handle in a finally block|"
    "take the locks in one fixed order|profile it with py-spy first"
)
_LANGS = ["Python", "TypeScript", "Go", "Rust", "SQL", "Bash", "Java"]
_TASKS = _alternatives(
    "parse a date string|read a file line by line|retry an HTTP call|sort a list of dicts|"
    "format a number with commas|merge two maps|spawn a subprocess|parse command line flags|"
    "write a unit test for a class|time a block of code|deduplicate a list|read env variables"
)
_CHAT = _alternatives(
    "thanks, that worked|nice, the build is green again|ok let me try that|"
    "perfect, merged it|hmm, still failing|great explanation"
)


def filler(rng: random.Random) -> str:
    """One everyday exchange, on the same subjects the facts talk about."""
    topic, lang = rng.choice(_TOPICS), rng.choice(_LANGS)
    shape = rng.randrange(4)
    if shape == 0:
        return (
            f"User: the {topic} {rng.choice(_PROBLEMS)}.\nAssistant: First {rng.choice(_FIXES)}, "
            f"then watch the {topic} metrics for a while."
        )
    if shape == 1:
        task = rng.choice(_TASKS)
        return (
            f"User: how do I {task} in {lang}?\nAssistant: In {lang}, to {task}, use the "
            "standard library helper and handle the error case explicitly."
        )
    if shape == 2:
        return (
            f"User: can you review this {lang} change to the {topic}?\nAssistant: Looks fine "
            f"overall; I'd {rng.choice(_FIXES)} and add a test for the {topic}."
        )
    return f"User: {rng.choice(_CHAT)} ({topic})\nAssistant: Glad to hear it. Anything else?"


@dataclass(frozen=True)
class Fact:
    record: MemoryRecord
    own_words: str
    paraphrase: str


@dataclass(frozen=True)
class TestSet:
    facts: list[Fact]
    records: list[MemoryRecord]  # the facts and the filler, shuffled


def record(user: str, project: str, session: str, text: str, at: float) -> MemoryRecord:
    return MemoryRecord(
        memory_id(user, project, text), user, project, session, "bench", None, at, text
    )


def build(
    seed: int = 7, users: int = 5, projects: int = 4, facts: int = 200, fillers: int = 3000
) -> TestSet:
    """`facts` facts, each kind at most once per (user, project), plus `fillers` fillers."""
    rng = random.Random(seed)
    scopes = [(f"user{u}", f"project{p}") for u in range(users) for p in range(projects)]
    slots = [(scope, kind) for scope in scopes for kind in range(len(FACTS))]
    planted: list[Fact] = []
    records: list[MemoryRecord] = []
    for n, ((user, project), kind) in enumerate(rng.sample(slots, facts)):
        text, own, paraphrase, values = FACTS[kind]
        person = rng.choice(PEOPLE)
        fact_text = text.format(x=rng.choice(values), p=person)
        fact = record(user, project, f"past-{n}", fact_text, 1e9 + n)
        planted.append(Fact(fact, own.format(p=person), paraphrase.format(p=person)))
        records.append(fact)
    seen = {r.id for r in records}
    while len(records) < facts + fillers:
        user, project = rng.choice(scopes)
        extra = record(user, project, f"past-{len(records)}", filler(rng), 1e9 + len(records))
        if extra.id not in seen:
            seen.add(extra.id)
            records.append(extra)
    rng.shuffle(records)
    return TestSet(planted, records)
