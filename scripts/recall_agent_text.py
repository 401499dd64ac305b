"""What a coding agent's exchanges are made of besides their point: log lines a user
pastes, code, the checks the agent ran, why something happened, files changed, tests run,
what is left. They carry service names, hosts, ports and numbers that are not facts
anyone asks about later: the noise a real memory holds.

Slots (recall_chatter.py): s the service, t a thing it handles, T the same in CamelCase,
f a field, o another service, n a number, p a port, e an environment, h a host.
"""

from __future__ import annotations

import random

from scripts.recall_world import Project, Service, env_word, port, words

Slots = dict[str, object]

THINGS = words(
    "invoices sessions webhooks retries pagination uploads exports cache config metrics "
    "users orders refunds tokens emails thumbnails quotas audit_log"
)
FIELDS = ("customer_id", "currency", "created_at", "tenant", "locale", "amount_cents", "sku")


def slots_for(project: Project, service: Service, rng: random.Random) -> Slots:
    """The details of one piece of work on `service`, shared by its exchanges."""
    thing = rng.choice(THINGS)
    others = [s.name for s in project.services if s is not service] or [service.name]
    described = f"{service.name} ({rng.choice(service.role.aliases)})"
    return {
        "s": service.name,
        "sx": described if rng.random() < 0.3 else service.name,  # how a user may name it
        "t": thing,
        "T": thing.title().replace("_", ""),
        "f": rng.choice(FIELDS),
        "o": rng.choice(others),
        "n": rng.randint(120, 900),
        "p": port(rng),
        "e": env_word(rng, rng.choice(("staging", "production", "dev"))),
        "h": rng.choice(project.hosts),
    }


def joined(*parts: str) -> str:
    """An answer of these paragraphs, the empty ones left out."""
    return "\n\n".join(part for part in parts if part)


FILES = {
    "Python": ("{s}/{t}.py", "{s}/api/{t}_routes.py", "tests/test_{t}.py", "{s}/settings.py"),
    "Go": ("internal/{t}/handler.go", "internal/{t}/store.go", "internal/{t}/handler_test.go"),
    "TypeScript": ("src/{t}/index.ts", "src/{t}/{t}.service.ts", "test/{t}.spec.ts"),
    "Kotlin": ("src/main/kotlin/{T}Service.kt", "src/test/kotlin/{T}ServiceTest.kt"),
    "Rust": ("src/{t}.rs", "src/config.rs", "tests/{t}.rs"),
}
TEST_COMMANDS = {
    "Python": "pytest -q tests/test_{t}.py",
    "Go": "go test ./internal/{t}/...",
    "TypeScript": "npm test -- {t}",
    "Kotlin": "./gradlew test --tests '*{T}*'",
    "Rust": "cargo test {t}",
}
SNIPPETS = {
    "Python": (
        "```python\nasync def fetch_{t}(client: httpx.AsyncClient, {f}: str) -> dict:\n"
        '    response = await client.get(f"/{t}/{{{f}}}", timeout=5.0)\n'
        "    response.raise_for_status()\n    return response.json()\n```"
    ),
    "Go": (
        "```go\nfunc (h *Handler) Get{T}(w http.ResponseWriter, r *http.Request) {{\n"
        "\tctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)\n\tdefer cancel()\n"
        '\titems, err := h.store.List{T}(ctx, r.URL.Query().Get("{f}"))\n'
        "\tif err != nil {{\n\t\thttp.Error(w, err.Error(), http.StatusBadGateway)\n"
        "\t\treturn\n\t}}\n"
        "\tjson.NewEncoder(w).Encode(items)\n}}\n```"
    ),
    "TypeScript": (
        "```ts\nexport async function load{T}({f}: string): Promise<{T}[]> {{\n"
        "  const res = await fetch(`${{BASE_URL}}/{t}?{f}=${{encodeURIComponent({f})}}`);\n"
        "  if (!res.ok) throw new Error(`{t} failed: ${{res.status}}`);\n"
        "  return res.json();\n}}\n```"
    ),
    "Kotlin": (
        "```kotlin\nsuspend fun fetch{T}({f}: String): List<{T}> =\n"
        '    client.get("/{t}") {{ parameter("{f}", {f}) }}.body()\n```'
    ),
    "Rust": (
        "```rust\npub async fn fetch_{t}(client: &Client, {f}: &str) -> Result<Vec<{T}>> {{\n"
        '    let url = format!("{{}}/{t}?{f}={{}}", base_url(), {f});\n'
        "    Ok(client.get(url).send().await?.error_for_status()?.json().await?)\n}}\n```"
    ),
}
LEFT_OVER = (
    "I didn't touch the migrations, so this can go out on its own.",
    "Worth watching the error rate on the {s} dashboard for a day after the deploy.",
    "There's a TODO where the {t} batch size is still hard-coded; I left it.",
    "{o} has the same pattern; I can fix it there too if you want.",
    "The old code path is still reachable behind the config flag; remove it next release?",
    "I haven't run the end-to-end suite against {e}; CI will.",
)


def wrap_up(service: Service, slots: Slots, rng: random.Random) -> str:
    """What an agent's summary ends with: files changed, the tests it ran, what is left."""
    parts = []
    if rng.random() < 0.7:
        files = rng.sample(FILES[service.language], rng.randint(1, len(FILES[service.language])))
        parts.append(
            "Files changed:\n"
            + "\n".join(
                f"- {path.format(**slots)} (+{rng.randint(2, 80)} -{rng.randint(0, 40)})"
                for path in files
            )
        )
    if rng.random() < 0.7:
        command = TEST_COMMANDS[service.language].format(**slots)
        parts.append(f"Ran `{command}`: {rng.randint(4, 60)} passed, 0 failed.")
    if rng.random() < 0.5:
        parts.append(rng.choice(LEFT_OVER).format(**slots))
    return "\n\n".join(parts)


LOG_LINES = (
    "{stamp} ERROR {s} request_id={rid} path=/{t} upstream={o}:{p} status=502 duration_ms={n}",
    "{stamp} WARN  {s} pool exhausted waiting for connection host={h} waited_ms={n}",
    "{stamp} INFO  {s} GET /{t}?{f}=... 200 {n}ms",
    "{stamp} ERROR {s} Traceback (most recent call last): KeyError: '{f}'",
    "{stamp} WARN  {s} retrying call to {o} attempt=2 backoff_ms={n}",
    "{stamp} INFO  {s} listening on 0.0.0.0:{p} env={e}",
    "{stamp} ERROR {s} read tcp {h}:{p}: connection reset by peer",
)
CHECKS = (
    "`kubectl logs deploy/{s} -n {e} --since=1h` shows the errors start at the same minute",
    "the {s} dashboard: the error rate rises with traffic, not with deploys",
    "{o} answered normally during the whole window",
    "the last deploy of {s} was two days earlier, so not the release",
    "the database CPU stayed under 40%",
    "`ss -tanp` on {h} shows a few hundred sockets in CLOSE_WAIT",
)
WHY = (
    "This only shows under load because the slow path needs two requests for the same {t} "
    "within a few milliseconds, which never happens on a laptop but happens every minute in {e}.",
    "It has probably been there since the {t} refactor; nothing before it called {o} from two "
    "places at once.",
    "The tests didn't catch it because they stub {o}, and the stub answers instantly.",
    "The retries made it worse: each timed-out call was repeated three times, tripling the load "
    "on {o} exactly when it was slow.",
    "Nothing in {s}'s own code changed: the behaviour of the client library did, in the minor "
    "upgrade last week.",
)


def pasted_logs(slots: Slots, rng: random.Random) -> str:
    """A few log lines, as a user pastes them."""
    lines = []
    day, hour = rng.randint(1, 28), rng.randint(0, 23)
    for second in sorted(rng.sample(range(3600), rng.randint(3, 9))):
        stamp = f"2025-11-{day:02d}T{hour:02d}:{second // 60:02d}:{second % 60:02d}Z"
        rid = f"{rng.getrandbits(40):010x}"
        lines.append(rng.choice(LOG_LINES).format(stamp=stamp, rid=rid, **slots))
    return "```\n" + "\n".join(lines) + "\n```"


def checked(slots: Slots, rng: random.Random) -> str:
    """What the agent looked at before concluding."""
    found = rng.sample(CHECKS, rng.randint(2, 4))
    return "What I checked:\n" + "\n".join("- " + line.format(**slots) for line in found)


DESIGN_NOTES = (
    "I kept the change inside {s}: {o} gets the new field only if it asks for it, so the two "
    "can be deployed in any order.",
    "The default stays as it was, so existing callers see no difference until they opt in.",
    "I considered doing this in the database with a generated column, but the {t} table is "
    "large and the migration would lock it; doing it in the query is cheap enough.",
    "Validation errors come back as 422 with the field name, like the other endpoints of {s}.",
    "The cursor is opaque (base64 of created_at and id), so we can change the ordering later "
    "without breaking clients.",
)


def design_notes(slots: Slots, rng: random.Random) -> str:
    return " ".join(line.format(**slots) for line in rng.sample(DESIGN_NOTES, rng.randint(1, 3)))


def why(slots: Slots, rng: random.Random) -> str:
    return " ".join(line.format(**slots) for line in rng.sample(WHY, rng.randint(1, 2)))
