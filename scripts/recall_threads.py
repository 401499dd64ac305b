"""Sessions are made of threads, as real ones are: a piece of work (an incident, a
feature, a review...) asked about, then followed up in the next exchanges — "still
failing on staging", "add a test for that", "same for the other service" — on the same
service and details. So neighbouring exchanges share their topic, and a follow-up alone
often does not say what it is about.
"""

from __future__ import annotations

import random

from scripts.recall_agent_text import (
    FILES,
    TEST_COMMANDS,
    Slots,
    joined,
    slots_for,
    why,
    wrap_up,
)
from scripts.recall_chatter import CHANGES, CODING_CHATTER
from scripts.recall_everyday import EVERYDAY_CHATTER
from scripts.recall_world import Project, Service, World

Exchange = tuple[str, str]  # what the user typed, the final answer
FOLLOW_UPS_WEIGHTS = (0.4, 0.3, 0.2, 0.1)  # threads of 1, 2, 3 and 4 exchanges


def _still_failing(service: Service, slots: Slots, rng: random.Random) -> Exchange:
    user = rng.choice(("hmm still failing on {e}, same error", "nope, {s} still does it"))
    answer = (
        "Then the first change wasn't the whole story. The remaining failures come from the "
        "{t} path in {o}, which had its own copy of the same logic; I applied the same fix "
        "there."
    )
    return user.format(**slots), joined(answer.format(**slots), wrap_up(service, slots, rng))


def _add_test(service: Service, slots: Slots, rng: random.Random) -> Exchange:
    path = rng.choice(FILES[service.language]).format(**slots)
    command = TEST_COMMANDS[service.language].format(**slots)
    answer = (
        f"Added a regression test for the {slots['t']} case in {path}: it reproduces the "
        f"failure on the old code and passes now. `{command}`: all green."
    )
    return rng.choice(("can you add a test for that?", "cover that with a test pls")), answer


def _same_elsewhere(service: Service, slots: Slots, rng: random.Random) -> Exchange:
    return (
        "perfect. {o} next, same change please".format(**slots),
        joined(
            "Done in {o} too, same change and tests.".format(**slots), wrap_up(service, slots, rng)
        ),
    )


def _why(service: Service, slots: Slots, rng: random.Random) -> Exchange:
    return "why did that happen in the first place?", why(slots, rng)


def _pull_request(service: Service, slots: Slots, rng: random.Random) -> Exchange:
    number = rng.randint(100, 4000)
    return (
        "ok, open a PR for it",
        f'Opened #{number} "{slots["s"]}: fix {slots["t"]} handling" with a summary of the '
        "cause and the fix. CI is running; I'll look at it when it's done.",
    )


def _thanks(service: Service, slots: Slots, rng: random.Random) -> Exchange:
    return rng.choice(
        (
            ("thanks, that fixed it", "Glad it worked."),
            ("ok tests are green now", "Great. I'll leave the branch as it is."),
            ("nice, merged", "Good. Anything else on {s}?".format(**slots)),
        )
    )


def _changelog(service: Service, slots: Slots, rng: random.Random) -> Exchange:
    return (
        "can you also update the changelog for {s}?".format(**slots),
        "Added an entry under Unreleased in {s}'s CHANGELOG.md: fixed {t} handling.".format(
            **slots
        ),
    )


FOLLOW_UPS = (_still_failing, _add_test, _same_elsewhere, _why, _pull_request, _thanks, _changelog)


def coding_thread(project: Project, service: Service, rng: random.Random) -> list[Exchange]:
    """Work on `service`: a change it asks for is followed up as changes are; a question
    (a review, a query, git, configuration) at most by a thanks."""
    slots = slots_for(project, service, rng)
    first = rng.choice(CODING_CHATTER)
    thread = [first(service, slots, rng)]
    if first in CHANGES:
        follow_ups = rng.sample(FOLLOW_UPS, rng.choices(range(4), FOLLOW_UPS_WEIGHTS)[0])
    else:
        follow_ups = [_thanks] * (rng.random() < 0.3)
    thread += [follow_up(service, slots, rng) for follow_up in follow_ups]
    return thread


def everyday_thread(world: World, rng: random.Random) -> list[Exchange]:
    question, answer = rng.choice(EVERYDAY_CHATTER)(world, rng)
    thread = [(question, answer)]
    family = world.family
    follow_ups = (
        ("thanks!", "You're welcome!"),
        (f"{family.partner} says it sounds good, thanks", "Great, enjoy!"),
        (
            "can you save that as a short note for later?",
            "Here's the short version:\n\n" + answer[:300].rsplit(" ", 1)[0] + " …",
        ),
    )
    for follow_up in rng.sample(follow_ups, rng.choices(range(3), (0.5, 0.35, 0.15))[0]):
        thread.append(follow_up)
    return thread
