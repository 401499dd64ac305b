"""How a developer's team works, as it comes up in passing: decisions and their reasons,
errors and their fixes, conventions the user asks the agent to follow, pinned versions,
who does what; and the later questions about them, in other words. A convention is often
asked about not as a question but as a task that should follow it (open-domain).
"""

from __future__ import annotations

import random

from scripts.recall_plan import Ask, Plan, Planter, once, pick
from scripts.recall_world import Project, World

# (purpose, choice, alternative, reason, the purpose as questions name it)
DECISIONS = (
    (
        "a message queue",
        "SQS",
        "Kafka",
        "nobody wanted to run Zookeeper",
        ("the queue", "our broker"),
    ),
    (
        "frontend state",
        "Zustand",
        "Redux",
        "far less boilerplate",
        ("state management", "the UI store"),
    ),
    (
        "feature flags",
        "Unleash",
        "LaunchDarkly",
        "the per-seat price",
        ("flags", "the toggles tool"),
    ),
    (
        "observability",
        "Grafana Cloud",
        "Datadog",
        "the bill per host",
        ("observability", "monitoring"),
    ),
    (
        "identity",
        "Keycloak",
        "Auth0",
        "we must self-host for compliance",
        ("identity", "single sign-on"),
    ),
    (
        "search",
        "Meilisearch",
        "Elasticsearch",
        "its memory footprint",
        ("search", "the search backend"),
    ),
    (
        "background jobs",
        "Celery",
        "RQ",
        "we need scheduled tasks",
        ("background jobs", "the task runner"),
    ),
    ("infrastructure code", "OpenTofu", "Pulumi", "the licence change", ("infra as code", "IaC")),
)


def decision(world: World, project: Project, rng: random.Random) -> Plan:
    purpose, choice, other, reason, names = rng.choice(DECISIONS)
    asked_as = rng.choice(names)
    said = pick(
        rng,
        (
            "decided: {c} for {p}, not {o}, because {why}",
            "we're going with {c} over {o} for {p}; {why}",
            "final call on {p} is {c} ({o} lost on {why})",
        ),
        c=choice,
        p=purpose,
        o=other,
        why=reason,
    )
    asked = rng.choice(
        (
            f"why didn't we pick {other}?",
            f"what did we settle on for {asked_as}, and why?",
            f"remind me of the reasoning behind {asked_as}",
        )
    )
    return once(project.scope, said, "single-hop", asked)


# (error as seen, how later questions describe it: quoting it, in other words; the fix)
ERRORS = (
    (
        "ERR_OSSL_EVP_UNSUPPORTED during the webpack build",
        ("the ERR_OSSL_EVP_UNSUPPORTED error", "the OpenSSL crash when bundling the frontend"),
        "NODE_OPTIONS=--openssl-legacy-provider until we upgrade webpack",
    ),
    (
        "pg_config executable not found while installing psycopg2",
        ("the pg_config not found error", "the postgres driver refusing to compile in docker"),
        "installing libpq-dev in the builder stage",
    ),
    (
        "x509: certificate signed by unknown authority from the registry",
        ("the x509 unknown authority error", "TLS trust failures when pulling images"),
        "mounting the corporate CA bundle into the runner",
    ),
    (
        "ModuleNotFoundError: No module named 'distutils'",
        ("the missing distutils module", "the import failure after the interpreter upgrade"),
        "adding setuptools to the dev requirements",
    ),
    (
        "EADDRINUSE on port 3000 when starting the dev server",
        ("EADDRINUSE on the dev server", "the local server failing because its socket was taken"),
        "killing the stale node process and setting PORT in .env.local",
    ),
    (
        "sqlite3.OperationalError: database is locked in the worker tests",
        ("'database is locked' in the tests", "tests colliding on the embedded DB file"),
        "WAL mode plus a 5 s busy_timeout",
    ),
    (
        "Too many open files under load",
        ("the too many open files error", "the descriptor exhaustion in the load test"),
        "LimitNOFILE=65535 in the systemd unit",
    ),
    (
        "Permission denied (publickey) in the deploy job",
        ("Permission denied (publickey) when deploying", "the deploy step failing to auth to git"),
        "a read-only deploy key on the repository",
    ),
)


def error_fix(world: World, project: Project, rng: random.Random) -> Plan:
    error, descriptions, fix = rng.choice(ERRORS)
    described = rng.choice(descriptions)
    service = rng.choice(project.services)
    said = pick(
        rng,
        (
            "the {err} in {s} is gone: the fix was {fix}",
            "got past {err} ({s}) with {fix}",
            "for the record, {err} on {s} was solved by {fix}",
        ),
        err=error,
        s=service.name,
        fix=fix,
    )
    asked = rng.choice(
        (
            f"how did we get past {described} last time?",
            f"we're hitting {described} again, what was the workaround?",
        )
    )
    return once(project.scope, said, "single-hop", asked, topic=service)


# (said, a task later asked that should follow it, a direct question about it)
PREFERENCES = (
    (
        "commit messages in Conventional Commits, imperative, no trailing period",
        "write a commit message for the retry fix I just made in {s}",
        "how should commit messages look here?",
    ),
    (
        "we log with structlog as key=value events, never print()",
        "add some logging to the webhook handler in {s}",
        "what do new modules write their log lines with?",
    ),
    (
        "tests are plain pytest functions with fixtures, no TestCase classes, "
        "no mocking our own code",
        "write tests for the discount calculation in {s}",
        "what style do unit tests follow in this repo?",
    ),
    (
        "don't add new dependencies without asking me first",
        "can you pull in a library to parse these CSV uploads in {s}?",
        "am I allowed to add a new dependency?",
    ),
    (
        "branches are named <ticket>-<short-slug>, e.g. PAY-812-refund-rounding",
        "I'm starting on ticket 4471 about the {s} timeout, what should I call my branch?",
        "what's our convention for naming a git branch?",
    ),
    (
        "ruff with line length 100, and type hints on every public function",
        "clean up this helper in {s} so it passes review",
        "what's our max line length?",
    ),
)


def preference(world: World, project: Project, rng: random.Random) -> Plan:
    said, task, direct = rng.choice(PREFERENCES)
    service = rng.choice(project.services)
    told = pick(rng, ("from now on: {p}", "please remember, {p}", "house rule here: {p}"), p=said)
    if rng.random() < 0.6:
        ask = Ask("open-domain", task.format(s=service.name), ((0,),))
    else:
        ask = Ask("single-hop", direct, ((0,),))
    return Plan(project.scope, (told,), (ask,), by_user=True)


# (language, pinned version, a later feature, it works on the pin)
PINS = (
    ("Python", "3.9", "match statements", False),
    ("Python", "3.11", "ExceptionGroup and except*", True),
    ("Python", "3.10", "the new type parameter syntax from PEP 695", False),
    ("Node", "16", "the built-in fetch without a polyfill", False),
    ("Node", "20", "the built-in test runner", True),
    ("Go", "1.20", "range-over-func iterators", False),
)


def version_pin(world: World, project: Project, rng: random.Random) -> Plan:
    language, version, feature, _works = rng.choice(PINS)
    reason = rng.choice(("the base image", "a customer's on-prem install", "the old CI agents"))
    said = pick(
        rng,
        (
            "we're stuck on {l} {v} because of {why}",
            "{p} targets {l} {v}, pinned for {why}",
        ),
        l=language,
        v=version,
        why=reason,
        p=project.name,
    )
    if rng.random() < 0.6:
        ask = Ask("open-domain", f"can I use {feature} in this codebase?", ((0,),))
    else:
        ask = Ask("single-hop", f"which {language} release are we locked to?", ((0,),))
    return Plan(project.scope, (said,), (ask,))


def person_role(world: World, project: Project, rng: random.Random) -> Plan:
    person = world.person(rng)
    said = pick(
        rng,
        ("{n} is our {r}", "{n} joined as {r} last month", "ask {n}, they're the {r}"),
        n=person.name,
        r=person.role,
    )
    asked = f"what does {person.name} do here?"
    return once(project.scope, said, "single-hop", asked, by_user=True)


TEAM_PLANTERS: tuple[Planter, ...] = (
    decision,
    decision,
    error_fix,
    error_fix,
    preference,
    preference,
    version_pin,
    person_role,
)
