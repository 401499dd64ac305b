"""Facts of a developer's systems, as they come up in passing, and the later questions
about them, in other words (paraphrase tables written by hand, before any measurement).

Each planter returns one Plan for a project: ports, hosts, owners, which service calls
which, jobs, deploy commands, values that changed (the earlier one told first, in another
session). A question names the thing asked about as people do (a code name or a
description), never in the sentence that told it. How the team works (decisions,
fixes, conventions) is in recall_team_facts.py.
"""

from __future__ import annotations

import random

from scripts.recall_plan import Ask, Plan, Planter, once, pick
from scripts.recall_world import Project, World, env_asked, env_word, port


def service_port(world: World, project: Project, rng: random.Random) -> Plan:
    service = rng.choice(project.services)
    env = rng.choice(("staging", "production"))
    said = pick(
        rng,
        (
            "fyi {s} is on port {p} in {e} now",
            "{s} in {e} listens on {p}, not the default",
            "checked the compose file: {e} {s} binds :{p}",
            "if you curl {s} on {e}, it's port {p}",
            "the {e} {s} container exposes {p}",
        ),
        s=service.name,
        e=env_word(rng, env),
        p=port(rng),
    )
    asked = pick(
        rng,
        (
            "what port is {r} on in {e}?",
            "what do I connect to for {r} on {e}?",
            "my request to {r} in {e} gets connection refused, which port should it go to?",
            "remind me where {r} is reachable on {e}",
        ),
        r=service.referred(rng),
        e=env_asked(rng, env),
    )
    return once(
        project.scope, said, "single-hop", asked, topic=service, key=f"port {service.name} {env}"
    )


def moved_port(world: World, project: Project, rng: random.Random) -> Plan:
    """A port that changed: asked now, before, and when."""
    service = rng.choice(project.services)
    env = rng.choice(("staging", "production"))
    old, new = port(rng), port(rng)
    e = env_word(rng, env)
    first = pick(
        rng,
        (
            "{s} runs on {old} in {e}, the health check hits /healthz there",
            "point the {e} client at {s}:{old}",
            "in {e} the {s} pods listen on {old}",
        ),
        s=service.name,
        e=e,
        old=old,
    )
    restates_old = rng.random() < 0.5
    change = pick(
        rng,
        (
            "we moved {e} {s} from {old} to {new} because of a clash with the sidecar",
            "heads up: {s} on {e} switched from port {old} to {new} today",
        )
        if restates_old
        else (
            "{s} in {e} is on {new} from today, the old port is closed",
            "after the ingress rework {e} {s} answers on {new} only",
        ),
        s=service.name,
        e=e,
        old=old,
        new=new,
    )
    r, ask_env = service.referred(rng), env_asked(rng, env)
    return Plan(
        project.scope,
        (first, change),
        (
            Ask("temporal", f"which port does {r} use in {ask_env} these days?", ((1,),)),
            Ask(
                "temporal",
                pick(
                    rng,
                    (
                        "before we moved it, what did {r} listen on in {e}?",
                        "what was the old {e} port of {r}, before the change?",
                    ),
                    r=r,
                    e=ask_env,
                ),
                ((0, 1),) if restates_old else ((0,),),
            ),
            Ask("temporal", f"when did the {ask_env} address of {r} change?", ((1,),)),
        ),
        ordered=True,
        topic=service,
        key=f"port {service.name} {env}",
    )


def owner_and_dependency(world: World, project: Project, rng: random.Random) -> Plan:
    """A calls B for something; B has an owner and a host: single- and multi-hop."""
    caller, callee = rng.sample(project.services, 2)
    owner = world.person(rng).name
    host = rng.choice(project.hosts)
    depends = pick(
        rng,
        (
            "{a} calls {b} {purpose}, so mock {b} in those tests",
            "remember {a} goes through {b} {purpose}",
            "{a} has a client for {b}, it uses it {purpose}",
        ),
        a=caller.name,
        b=callee.name,
        purpose=callee.role.purpose,
    )
    owns = pick(
        rng,
        (
            "{p} owns {b}, loop them in on anything touching it",
            "{p} wrote most of {b} and reviews every change there",
            "CODEOWNERS lists {p} for {b}, ask them before changing its retries",
        ),
        p=owner,
        b=callee.name,
    )
    runs = pick(
        rng,
        ("{b} runs on {h}", "{b} is deployed to {h}", "the {b} process lives on {h}"),
        b=callee.name,
        h=host,
    )
    a = caller.referred(rng)
    purpose = callee.role.purpose if rng.random() < 0.5 else callee.role.asked_purpose
    return Plan(
        project.scope,
        (depends, owns, runs),
        (
            Ask(
                "single-hop",
                f"which service does {a} rely on {purpose}?",
                ((0,),),
            ),
            Ask(
                "single-hop",
                rng.choice(("who is the maintainer of {r}?", "who's responsible for {r}?")).format(
                    r=callee.referred(rng)
                ),
                ((1,),),
            ),
            Ask(
                "multi-hop",
                f"who should review my change to whatever {a} uses {purpose}?",
                ((0,), (1,)),
            ),
            Ask(
                "multi-hop",
                f"which host runs the thing {a} needs {purpose}?",
                ((0,), (2,)),
            ),
        ),
        topic=callee,
        key=f"callee {callee.name}",
    )


JOBS = (
    ("nightly export to the warehouse", ("warehouse dump", "DWH sync")),
    ("database backup", ("pg dump", "backup job")),
    ("invoice batch", ("billing run", "monthly invoicing cron")),
    ("search reindex", ("full reindex", "index rebuild")),
    ("sitemap generation", ("sitemap job", "SEO crawl file build")),
)


def cron_job(world: World, project: Project, rng: random.Random) -> Plan:
    job, aliases = rng.choice(JOBS)
    host = rng.choice(project.hosts)
    at = f"{rng.randint(0, 5):02d}:{rng.choice((0, 15, 30, 45)):02d}"
    said = pick(
        rng,
        (
            "the {j} runs at {t} UTC on {h}",
            "{j} is a cron on {h}, {t} every night",
            "cron on {h} fires the {j} at {t}",
        ),
        j=job,
        h=host,
        t=at,
    )
    alias = rng.choice(aliases)
    asked = rng.choice(
        (
            f"what time does the {alias} kick off?",
            f"which box does the {alias} happen on?",
            f"if the {alias} didn't happen last night, where do I look?",
        )
    )
    return once(project.scope, said, "single-hop", asked)


DEPLOYS = (
    "make deploy ENV={e}",
    "./scripts/release.sh {s} {e}",
    "helm upgrade {s} charts/{s} -f values-{e}.yaml",
    "fly deploy -a {s}-{e}",
    "just ship {s} {e}",
    "ansible-playbook deploy.yml -l {e} -e app={s}",
)


def deploy_command(world: World, project: Project, rng: random.Random) -> Plan:
    service = rng.choice(project.services)
    env = rng.choice(("staging", "production"))
    command = rng.choice(DEPLOYS).format(s=service.name, e=env)
    said = pick(
        rng,
        (
            "to deploy {s} we run `{c}` from the repo root",
            "deploys of {s} are `{c}`, CI does the same",
            "`{c}` is how {s} gets released",
        ),
        s=service.name,
        c=command,
    )
    asked = pick(
        rng,
        (
            "how do I push a new build of {r} out to {e}?",
            "how do I deploy {r} to {e}?",
            "what's the procedure to ship {r} on {e}?",
            "I have a fix for {r}, how does it get to {e}?",
        ),
        r=service.referred(rng),
        e=env_asked(rng, env),
    )
    return once(project.scope, said, "single-hop", asked, topic=service)


def ci_migration(world: World, project: Project, rng: random.Random) -> Plan:
    old, new = rng.sample(("GitHub Actions", "GitLab CI", "Buildkite", "CircleCI", "Jenkins"), 2)
    first = pick(
        rng,
        (
            "our pipelines run on {o}, the config is in the repo",
            "CI is {o}; the nightly job takes about 25 minutes",
            "the {o} runners are slow again",
        ),
        o=old,
    )
    change = pick(
        rng,
        (
            "we finished moving CI from {o} to {n} today",
            "{n} is our CI now, {o} is switched off",
            "cut over the builds to {n} this morning",
        ),
        o=old,
        n=new,
    )
    return Plan(
        project.scope,
        (first, change),
        (
            Ask("temporal", f"when did we adopt {new} for builds?", ((1,),)),
            Ask(
                "temporal",
                rng.choice(
                    (
                        f"which CI did we use before {new}?",
                        "what did our automated checks run on before the switch?",
                    )
                ),
                ((0, 1),),
            ),
            Ask(
                "temporal",
                rng.choice(
                    ("what are we using for CI now?", "where do the automated checks run today?")
                ),
                ((1,),),
            ),
        ),
        ordered=True,
    )


# (what ran out, the setting changed, how a question describes the failure, old, new)
RESOURCES = (
    ("connection pool", "pool_size", "ran out of db connections", (10, 20), (40, 60)),
    ("memory limit", "the memory limit (MiB)", "kept getting OOM-killed", (256, 512), (1024, 2048)),
    (
        "request timeout",
        "the upstream timeout (s)",
        "hung on slow upstream calls",
        (5, 10),
        (30, 45),
    ),
    ("worker count", "the worker count", "fell behind on the queue", (2, 4), (8, 12)),
)


def incident_and_change(world: World, project: Project, rng: random.Random) -> Plan:
    service = rng.choice(project.services)
    what, setting, failure, before, after = rng.choice(RESOURCES)
    old, new = rng.choice(before), rng.choice(after)
    incident = pick(
        rng,
        (
            "{s} went down in production this morning, {what} was at {old} and maxed out",
            "postmortem notes: {s} outage, root cause the {what} of {old}",
        ),
        s=service.name,
        what=what,
        old=old,
    )
    change = pick(
        rng,
        (
            "bumped {setting} of {s} to {new} and added an alert",
            "{s}: {setting} is {new} now, that should stop the paging",
        ),
        s=service.name,
        setting=setting,
        new=new,
    )
    r = service.referred(rng)
    return Plan(
        project.scope,
        (incident, change),
        (
            Ask("temporal", f"what did we change in {r} after it {failure}?", ((1,),)),
            Ask("temporal", f"when was the outage where {r} {failure}?", ((0,),)),
        ),
        ordered=True,
        topic=service,
    )


INFRA_PLANTERS: tuple[Planter, ...] = (
    service_port,
    service_port,
    moved_port,
    owner_and_dependency,
    owner_and_dependency,
    cron_job,
    deploy_command,
    ci_migration,
    incident_and_change,
)
