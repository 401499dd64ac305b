"""The everyday exchanges of a developer with a coding agent, around the planted facts:
incidents, flaky tests, features, reviews, queries, configuration, git, performance,
deploys and short follow-ups. They talk about the same services, hosts, people,
environments and ports as the facts (another port of the same service, the same word
"staging"), so that a fact's words are never unique to it.

Each generator returns (what the user typed, the agent's final answer). Answers are as
long as an agent's summaries are: a line for a follow-up, else some 500 to 1,900
characters (what it found, what it changed, files, commands run, what is left).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from scripts.recall_agent_text import (
    SNIPPETS,
    TEST_COMMANDS,
    Slots,
    checked,
    design_notes,
    joined,
    pasted_logs,
    why,
    wrap_up,
)
from scripts.recall_world import Service

Chatter = Callable[[Service, Slots, random.Random], tuple[str, str]]

# (what the user sees, the cause the agent finds, what it changed): one incident each.
INCIDENTS = (
    (
        "returns 502 on /{t} every few minutes",
        "The load balancer closes idle connections after 60 s and the pool reuses them.",
        "The pool's idle timeout is now 30 s, below the load balancer's, and a reset "
        "connection is retried once.",
    ),
    (
        "p99 latency on /{t} jumped to {n} ms",
        "The handler creates a new HTTP client per request, so every call to {o} pays a "
        "TLS handshake.",
        "The client now lives in the app's lifespan and is reused; connections stay warm.",
    ),
    (
        "memory keeps growing until the pod restarts",
        "A module-level dict caches every {t} entry and never evicts anything.",
        "It's an LRU of 1,024 entries now, with a hit-rate metric next to the others.",
    ),
    (
        "writes duplicate {t} rows",
        "The retry wraps a non-idempotent POST, so a timeout after the write replays it.",
        "Requests carry an idempotency key and the retry skips POSTs without one.",
    ),
    (
        "throws KeyError: '{f}' on some requests",
        "The payload from {o} sometimes omits `{f}` and the code indexes it directly.",
        "The parser uses `.get('{f}')` and logs the {t} id when the field is missing.",
    ),
    (
        "gets intermittent 401s after the token refresh",
        "One worker refreshes the token; the others keep the old one until they restart.",
        "The refresh publishes the new token through Redis and every worker subscribes.",
    ),
    (
        "logs 'connection reset by peer' on port {p}",
        "That's the metrics listener on {p}: the scraper on {h} times out and hangs up.",
        "The scrape timeout is 10 s now and the metrics endpoint no longer recomputes "
        "everything per request.",
    ),
    (
        "deadlocks when the {t} job overlaps a refresh",
        "The two code paths take the account and {t} locks in opposite order.",
        "Both take the account lock first now; a test runs them concurrently 500 times.",
    ),
)


def incident(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    problem, cause, fix = (text.format(**slots) for text in rng.choice(INCIDENTS))
    user = rng.choice(
        (
            "{sx} {problem} in {e}, can you dig into it?",
            "seeing this since this morning: {sx} {problem}. what's going on?",
            "{sx} on {e}: {problem}. logs are in the usual place, find the cause pls",
        )
    ).format(problem=problem, **slots)
    if rng.random() < 0.6:
        user += "\n\n" + pasted_logs(slots, rng)
    snippet = SNIPPETS[service.language].format(**slots) if rng.random() < 0.5 else ""
    looked = checked(slots, rng) if rng.random() < 0.6 else ""
    return user, joined(cause, looked, why(slots, rng), fix, snippet, wrap_up(service, slots, rng))


def flaky_test(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    user = rng.choice(
        (
            "test_{t}_roundtrip in {s} fails on CI maybe one run in five, passes locally",
            "the {s} suite is flaky again, test_{t}_expiry this time",
            "CI red on {s}: test_{t} timed out after 30s but it's fine on my machine",
        )
    ).format(**slots)
    cause, fix = rng.choice(
        (
            (
                "The test depends on wall-clock time: it creates a {t} entry that expires in one "
                "second, and a busy CI runner is sometimes slower than that.",
                "I froze the clock with time-machine and made the expiry explicit.",
            ),
            (
                "It shares a temporary directory with another test, and under xdist they run in "
                "parallel, so one deletes the other's files.",
                "Each test gets its own tmp_path; the shared module-level path is gone.",
            ),
            (
                "It waits for the background task with a fixed sleep instead of an event.",
                "The test awaits the task's completion event now, with a 5 s ceiling.",
            ),
            (
                "The fixture binds port {p}, which another job on the runner sometimes holds.",
                "The fixture binds port 0 and reads back the port it got.",
            ),
        )
    )
    if rng.random() < 0.4:
        user += "\n\n" + pasted_logs(slots, rng)
    looked = checked(slots, rng) if rng.random() < 0.5 else ""
    return user, joined(
        cause.format(**slots), looked, why(slots, rng), fix, wrap_up(service, slots, rng)
    )


def feature(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    user = rng.choice(
        (
            "add cursor pagination to the /{t} endpoint of {sx}",
            "{sx} needs a bulk export of {t} as CSV, can you add it?",
            "make the {t} handler in {sx} accept a {f} filter",
            "implement soft delete for {t} in {sx}",
        )
    ).format(**slots)
    changes = "\n".join(
        "- " + line.format(**slots)
        for line in rng.sample(
            (
                "a new query parameter `{f}`, validated and passed down to the store",
                "the store builds the WHERE clause with bound parameters",
                "an index on ({f}, created_at) in a new migration",
                "the OpenAPI schema for /{t} is updated",
                "tests for the edge cases: empty page, last page, invalid cursor",
                "the response has `next_cursor` while more {t} exist",
                "the client in {o} is unchanged: the new field is optional",
            ),
            rng.randint(2, 4),
        )
    )
    snippet = SNIPPETS[service.language].format(**slots) if rng.random() < 0.5 else ""
    summary = f"Done. What changed in {service.name}:\n{changes}"
    reasons = why(slots, rng) if rng.random() < 0.4 else ""
    return user, joined(
        summary, design_notes(slots, rng), reasons, snippet, wrap_up(service, slots, rng)
    )


def review(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    user = "review this before I open the PR:\n" + SNIPPETS[service.language].format(**slots)
    notes = rng.sample(
        (
            "The timeout is hard-coded; read it from settings like the other calls in {s}.",
            "Errors from {o} all become a 502, but a 404 there should stay a 404.",
            "`{f}` goes into the URL unescaped.",
            "There's no retry, which is fine for a GET only if the callers retry.",
            "Name it for what it returns: it lists {t}, it doesn't fetch one.",
            "Add a test for the empty result; the caller assumes at least one item.",
            "Log the {f} on failure, or the next incident will be hard to trace.",
        ),
        rng.randint(2, 5),
    )
    listed = "\n".join(f"{i}. {note.format(**slots)}" for i, note in enumerate(notes, 1))
    suggestion = (
        "Something like:\n" + SNIPPETS[service.language].format(**{**slots, "f": "key"})
        if rng.random() < 0.5
        else ""
    )
    return user, joined("Mostly good. A few things:\n" + listed, suggestion)


def query(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    user = rng.choice(
        (
            "write a query for the number of {t} per day over the last 30 days",
            "SQL for the top 10 tenants by {t} this quarter?",
            "how do I find {t} rows with a null {f}?",
        )
    ).format(**slots)
    sql = (
        f"```sql\nSELECT date_trunc('day', created_at) AS day, {slots['f']}, count(*)\n"
        f"FROM {slots['t']}\nWHERE created_at >= now() - interval '30 days'\n"
        "GROUP BY 1, 2\nORDER BY 1;\n```"
    )
    note = rng.choice(
        (
            "Run it on the read replica; on the primary it competes with the {s} writes.",
            "It uses the index on created_at, so it stays fast as {t} grows.",
            "If you want days with zero rows too, join against generate_series.",
        )
    ).format(**slots)
    return user, joined(sql, note)


def config_question(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    variable = service.name.upper().replace("-", "_") + rng.choice(
        ("_METRICS_PORT", "_DEBUG_PORT", "_POOL_TIMEOUT", "_MAX_BODY_KB", "_LOG_LEVEL")
    )
    user = rng.choice(
        (
            "what does {v} do in {s}'s settings?",
            "is {v} still used anywhere?",
            "why is {v} set differently on {e}?",
        )
    ).format(v=variable, **slots)
    answer = rng.choice(
        (
            "{v} is read once at start-up in the settings module; {s} serves its Prometheus "
            "metrics there ({p} by default), apart from the main listener.",
            "Only the admin command reads it; the web process ignores it. On {e} it's {n} "
            "because someone raised it during an incident and never put it back.",
            "Yes: {o} reads it too, through the shared config package, so changing it means "
            "restarting both. The default is {n}.",
        )
    ).format(v=variable, **slots)
    return user, joined(answer, wrap_up(service, slots, rng) if rng.random() < 0.3 else "")


def git_help(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    task, answer = rng.choice(
        (
            (
                "squash my last 4 commits",
                "`git rebase -i HEAD~4`, then mark all but the first `s`.",
            ),
            (
                "undo a pushed merge on main",
                "`git revert -m 1 <merge-sha>` makes a commit that undoes it; "
                "never force-push main.",
            ),
            (
                "find which commit broke the {t} test",
                "`git bisect start`, `git bisect bad`, `git bisect good <tag>`, then "
                "`git bisect run {cmd}`; it stops at the first bad commit.",
            ),
            (
                "move my uncommitted changes to a new branch",
                "`git switch -c <name>`: uncommitted changes come along.",
            ),
        )
    )
    slots["cmd"] = TEST_COMMANDS[service.language].format(**slots)
    return f"how do I {task.format(**slots)}?", answer.format(**slots)


def performance(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    user = rng.choice(
        (
            "/{t} in {sx} takes {n} ms at p95, what can we do?",
            "profile the {t} import in {sx}, it's way too slow on {e}",
        )
    ).format(**slots)
    steps = rng.sample(
        (
            "Most of the time is one query per {t} row (an N+1); I batched them into one IN query.",
            "Serialising the response took a third of the time; orjson halves it.",
            "The three lookups in {o} ran one after another; they run concurrently now.",
            "The cache key included the request id, so nothing was ever a hit; fixed.",
            "py-spy showed a regex compiled inside the loop; it's compiled once now.",
        ),
        2,
    )
    result = f"On my run it went from {slots['n']} ms to about {int(str(slots['n'])) // 3} ms."
    found = " ".join(step.format(**slots) for step in steps)
    return user, joined(found, why(slots, rng), result, wrap_up(service, slots, rng))


def deploy_trouble(service: Service, slots: Slots, rng: random.Random) -> tuple[str, str]:
    user, answer = rng.choice(
        (
            (
                "the {s} rollout to {e} is stuck at 1/3 pods ready",
                "The new pods fail their readiness probe: it still calls the old path. I "
                "changed the chart to probe /healthz; a redeploy should go through.",
            ),
            (
                "deploy of {s} on {e} failed at the migration step",
                "The migration waits on a lock held by a long transaction of the {t} job. It "
                "runs once that job ends; next time, migrate before the job's window.",
            ),
            (
                "{s} crashloops right after the release, {h} shows exit code 137",
                "Exit code 137 is the kernel killing it for memory: the new {t} cache preloads "
                "everything at start-up. I made it lazy.",
            ),
        )
    )
    user = user.format(**slots)
    if rng.random() < 0.5:
        user += "\n\n" + pasted_logs(slots, rng)
    looked = checked(slots, rng) if rng.random() < 0.5 else ""
    return user, joined(answer.format(**slots), looked, wrap_up(service, slots, rng))


CODING_CHATTER: tuple[Chatter, ...] = (
    incident,
    incident,
    flaky_test,
    feature,
    feature,
    review,
    query,
    config_question,
    git_help,
    performance,
    deploy_trouble,
)
CHANGES = frozenset((incident, flaky_test, feature, performance, deploy_trouble))  # work done
