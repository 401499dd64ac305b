"""The personal-assistant side of a user's history: facts of their life told in passing
to a chat client (the general memory, no project), the questions asked about them later
in other words, and everyday chatter about the same people and places."""

from __future__ import annotations

import random

from scripts.recall_plan import Ask, Plan, Planter, QuestionKind, once, pick
from scripts.recall_world import CITIES, Project, World, words

GENERAL = ""  # the proxy's general memory: requests that name no project
MONTHS = words(
    "January February March April May June July August September October November December"
)

ALLERGENS = (
    ("peanuts", "satay or most granola bars"),
    ("sesame", "hummus or burger buns"),
    ("eggs", "pancakes from a mix or mayonnaise"),
    ("shellfish", "paella"),
)


def allergy(world: World, project: Project, rng: random.Random) -> Plan:
    kid = world.family.kid
    allergen, _examples = rng.choice(ALLERGENS)
    said = pick(
        rng,
        (
            "{k} is allergic to {a}, so the party food has to be checked",
            "we found out {k} reacts to {a}, the doctor gave us an EpiPen",
        ),
        k=kid,
        a=allergen,
    )
    ask = rng.choice(
        (
            Ask("open-domain", f"what snacks can I pack for {kid}'s school trip?", ((0,),)),
            Ask("single-hop", f"which foods must {kid} stay away from?", ((0,),)),
        )
    )
    return Plan(GENERAL, (said,), (ask,), by_user=True, key="allergy")


def sibling_birthday_and_city(world: World, project: Project, rng: random.Random) -> Plan:
    family = world.family
    day, month = rng.randint(1, 28), rng.choice(MONTHS)
    city = rng.choice([c for c in CITIES if c != family.city])
    birthday = pick(
        rng,
        (
            "{s}'s birthday is {m} {d}, remind me to order something early",
            "my {rel} {s} turns 40 on {m} {d}",
        ),
        s=family.sibling,
        rel=family.sibling_relation,
        m=month,
        d=day,
    )
    moved = pick(
        rng,
        (
            "my {rel} {s} finally moved to {c} for the new job",
            "my {rel} lives in {c} now, the flat is near the old harbour",
        ),
        s=family.sibling,
        rel=family.sibling_relation,
        c=city,
    )
    rel = family.sibling_relation
    return Plan(
        GENERAL,
        (birthday, moved),
        (
            Ask("single-hop", f"what city is my {rel} in these days?", ((1,),)),
            Ask(
                "multi-hop",
                f"where do I ship a present for my {rel}, and by what date?",
                ((0,), (1,)),
            ),
        ),
        by_user=True,
        key="sibling",
    )


def dentist_visit(world: World, project: Project, rng: random.Random) -> Plan:
    said = pick(
        rng,
        (
            "just back from the dentist, a small filling, next check-up in six months",
            "the dentist says my wisdom tooth can stay for now",
        ),
    )
    asked = rng.choice(("when was my last dentist visit?", "how long ago were my teeth checked?"))
    return _personal(said, "temporal", asked, "dentist")


RACES = ("half marathon", "10k trail race", "sprint triathlon", "cycling sportive")


def race_signup(world: World, project: Project, rng: random.Random) -> Plan:
    race, month = rng.choice(RACES), rng.choice(MONTHS)
    city = rng.choice(CITIES)
    said = pick(
        rng,
        (
            "signed up for the {r} in {c} in {m}, time to train properly",
            "I'm doing the {c} {r} in {m}",
        ),
        r=race,
        c=city,
        m=month,
    )
    asked = rng.choice(
        (
            Ask("single-hop", "what event am I training for?", ((0,),)),
            Ask("temporal", "when did I commit to that race?", ((0,),)),
        )
    )
    return Plan(GENERAL, (said,), (asked,), by_user=True, key="race")


def pet_medicine(world: World, project: Project, rng: random.Random) -> Plan:
    family = world.family
    said = pick(
        rng,
        (
            "{p} has to take the thyroid tablets twice a day with food now",
            "the vet put {p} on a joint supplement, one chew every morning",
        ),
        p=family.pet,
    )
    asked = rng.choice(
        (
            f"how often does {family.pet} get her pills?",
            f"what medicine is my {family.pet_kind} on, and how often?",
        )
    )
    return _personal(said, "single-hop", asked, "pet")


def partner_diet(world: World, project: Project, rng: random.Random) -> Plan:
    partner = world.family.partner
    diet = rng.choice(("went vegetarian", "stopped eating gluten", "is off dairy"))
    said = pick(
        rng,
        ("{p} {d} last month", "heads up for recipes: {p} {d}"),
        p=partner,
        d=diet,
    )
    return _personal(
        said, "open-domain", f"suggest a dinner I can cook for {partner} on Saturday", "diet"
    )


def car_inspection(world: World, project: Project, rng: random.Random) -> Plan:
    month = rng.choice(MONTHS)
    said = pick(
        rng,
        (
            "the car's inspection is due in {m}, garage is the one on Mill Road",
            "MOT for the Golf expires end of {m}",
        ),
        m=month,
    )
    asked = rng.choice(
        ("by when does the car need its yearly check?", "when's the vehicle test due?")
    )
    return _personal(said, "single-hop", asked, "car")


HOBBIES = ("bouldering", "sourdough baking", "vinyl records", "board games", "birdwatching")


def friend_hobby(world: World, project: Project, rng: random.Random) -> Plan:
    friend, hobby = world.family.friend, rng.choice(HOBBIES)
    said = pick(
        rng,
        ("{f} is completely into {h} lately", "{f} spent the whole weekend on {h} again"),
        f=friend,
        h=hobby,
    )
    return _personal(
        said, "open-domain", f"what would make a good housewarming gift for {friend}?", "friend"
    )


def lesson_moved(world: World, project: Project, rng: random.Random) -> Plan:
    kid = world.family.kid
    lesson = rng.choice(("piano lesson", "swimming class", "football practice"))
    old, new = rng.sample(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"), 2)
    first = pick(
        rng,
        ("{k}'s {l} is on {o} at 5", "I pick {k} up from {l} every {o}"),
        k=kid,
        l=lesson,
        o=old,
    )
    change = pick(
        rng,
        ("{k}'s {l} moved to {n}", "the {l} is {n}s from now on, new teacher"),
        k=kid,
        l=lesson,
        n=new,
    )
    return Plan(
        GENERAL,
        (first, change),
        (
            Ask("temporal", f"which afternoon do I collect {kid} after class now?", ((1,),)),
            Ask("temporal", f"what day was {kid}'s activity before it changed?", ((0,),)),
        ),
        ordered=True,
        by_user=True,
        key="lesson",
    )


def _personal(said: str, kind: QuestionKind, asked: str, key: str) -> Plan:
    return once(GENERAL, said, kind, asked, by_user=True, key=key)


PERSONAL_PLANTERS: tuple[Planter, ...] = (
    allergy,
    sibling_birthday_and_city,
    dentist_visit,
    race_signup,
    pet_medicine,
    partner_diet,
    car_inspection,
    friend_hobby,
    lesson_moved,
)
