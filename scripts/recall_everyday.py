"""Personal-assistant chatter (recipes, workouts, e-mails, trips, homework, the house)
about the user's family, pet and city, and the off-topic questions: things never
discussed in any history, in the same everyday and developer vocabulary, asked of a user
with a full memory to see what gets injected when nothing should."""

from __future__ import annotations

import random
from collections.abc import Callable

from scripts.recall_world import CITIES, World

Everyday = Callable[[World, random.Random], tuple[str, str]]


def recipe(world: World, rng: random.Random) -> tuple[str, str]:
    family = world.family
    ingredients = rng.choice(
        ("leeks, potatoes and some cream", "half a pumpkin and chickpeas", "rice, spinach, feta")
    )
    user = rng.choice(
        (
            f"I have {ingredients}, what can I make tonight?",
            f"dinner idea with {ingredients}? {family.kid} is picky",
        )
    )
    answer = (
        f"With {ingredients} you can make a one-pot dish for four.\n\n"
        "1. Soften a chopped onion and two garlic cloves in olive oil, 5 minutes.\n"
        "2. Add the vegetables, a teaspoon of cumin and some salt; stir for 2 minutes.\n"
        "3. Cover with 700 ml of stock and simmer for 25 minutes.\n"
        "4. Blend half of it if you like it thicker, then finish with lemon and herbs.\n\n"
        f"For {family.kid}, set a portion aside before the chilli goes in. Leftovers keep two "
        "days in the fridge and freeze well; serve with bread or rice."
    )
    return user, answer


def workout(world: World, rng: random.Random) -> tuple[str, str]:
    minutes = rng.choice((20, 30, 45))
    user = rng.choice(
        (
            f"give me a {minutes} minute workout I can do at home",
            f"{minutes} min session before work, no equipment",
        )
    )
    return user, (
        f"Here's a {minutes}-minute session:\n\n"
        "- Warm-up, 5 min: jumping jacks, arm circles, leg swings, a few slow squats.\n"
        "- Main block, 4 rounds: 10 squats, 10 push-ups (knees are fine), 12 lunges, "
        "30 s plank, 1 min rest.\n- Finisher: 1 min of mountain climbers.\n"
        "- Cool-down, 5 min: hamstring, hip flexor and chest stretches, 30 s each.\n\n"
        "Keep the pace conversational in the warm-up; if a round feels easy, add a second "
        "set of push-ups next time rather than speeding up."
    )


def email(world: World, rng: random.Random) -> tuple[str, str]:
    family = world.family
    who, about = rng.choice(
        (
            ("the landlord", "the dripping kitchen tap"),
            (f"{family.kid}'s teacher", "missing school on Friday for a family event"),
            ("the insurance", "a claim for the cracked phone screen"),
            (family.friend, "moving our dinner to next week"),
        )
    )
    user = f"help me write a short email to {who} about {about}"
    return user, (
        f"Hi,\n\nI'm writing about {about}. Could we find a time that works for you this "
        "week? Let me know what you need from me.\n\nThanks and best regards,\n" + world.me
    )


def trip(world: World, rng: random.Random) -> tuple[str, str]:
    city = rng.choice(CITIES)
    family = world.family
    user = rng.choice(
        (
            f"plan a long weekend in {city} with {family.partner}",
            f"what's worth seeing in {city} with a {family.kid_age} year old?",
        )
    )
    return user, (
        f"A relaxed plan for {city}:\n\n"
        "Day 1: arrive, walk the old town and the covered market, dinner near the river.\n"
        "Day 2: the main museum in the morning (book a slot online), lunch in the centre, a "
        "park or the beach in the afternoon, drinks at a rooftop bar.\n"
        "Day 3: a day trip by regional train to the coast or a nearby castle, back by "
        "evening.\n\nTips: book restaurants for Saturday in advance, get a 72-hour transport "
        "pass, and keep a rainy-day option such as the science centre."
    )


def homework(world: World, rng: random.Random) -> tuple[str, str]:
    kid = world.family.kid
    topic = rng.choice(("fractions", "the water cycle", "volcanoes", "long division", "magnets"))
    user = f"{kid} has homework on {topic}, how do I explain it simply?"
    return user, (
        f"Start from something {kid} can touch: for {topic}, a short experiment or a drawing "
        "works better than a definition. Ask them to explain it back to you in their words."
    )


def household(world: World, rng: random.Random) -> tuple[str, str]:
    problem, fix = rng.choice(
        (
            ("red wine on a wool rug", "blot, then cold water and a little dish soap; no heat"),
            ("limescale in the kettle", "boil half water half vinegar, leave an hour, rinse"),
            ("a squeaky door hinge", "lift the pin, a drop of oil, work it back and forth"),
            (
                "mould on the bathroom silicone",
                "diluted bleach on a cloth overnight, then ventilate",
            ),
        )
    )
    return f"how do I deal with {problem}?", f"For {problem}: {fix}."


def pet_chat(world: World, rng: random.Random) -> tuple[str, str]:
    family = world.family
    user = rng.choice(
        (
            f"{family.pet} keeps scratching the sofa, any tips?",
            f"is it ok to leave {family.pet} alone for a weekend?",
            f"what toys are good for a bored {family.pet_kind}?",
        )
    )
    return user, (
        f"For a {family.pet_kind} like {family.pet}, routine matters most: regular play at the "
        "same times, something to chew or scratch that's theirs, and ask a neighbour to check "
        "in if you're away more than a day."
    )


def small_talk(world: World, rng: random.Random) -> tuple[str, str]:
    family = world.family
    user = rng.choice(
        (
            "thanks!",
            f"{family.partner} liked the recipe btw",
            f"we're in {family.city} all summer, any rainy-day ideas?",
            f"my {family.parent_relation} visits next week, ideas for an easy Sunday?",
        )
    )
    answer = rng.choice(
        (
            "You're welcome!",
            "Glad to hear it.",
            "A museum morning, a film, and a long lunch somewhere cosy usually works.",
        )
    )
    return user, answer


EVERYDAY_CHATTER: tuple[Everyday, ...] = (
    recipe,
    workout,
    email,
    trip,
    homework,
    household,
    pet_chat,
    small_talk,
    small_talk,
)

# Never the subject of any history (checked by the tests against every generated text):
# developer questions and everyday ones sharing words with the histories (port, server,
# test, deploy, database, cook, trip, school, dinner...).
OFF_TOPIC = (
    "How do I forward a port on my home router for a game server?",
    "What's the difference between a process and a thread?",
    "Explain the CAP theorem in two sentences.",
    "Write a bash one-liner that counts the lines of every .go file in a folder.",
    "How do I center a div horizontally and vertically?",
    "What is a monad, in plain words?",
    "How do I undo git add for one file?",
    "Which is faster for lookups in Python, a list or a set, and why?",
    "How does TLS certificate pinning work on Android?",
    "What's a good way to learn Rust's borrow checker?",
    "Can you explain how a bloom filter works?",
    "How do I set a static IP address on Ubuntu?",
    "What does the HTTP 418 status code mean?",
    "Write a regular expression that matches an ISO 8601 date.",
    "How do I make a Raspberry Pi run a script at boot?",
    "What are the pros and cons of GraphQL compared with REST?",
    "How do I profile a slow SQL query in MySQL?",
    "What is the difference between UDP and TCP for a video call?",
    "How should I structure a Terraform module for a static website?",
    "What's the best way to store passwords in a database?",
    "How long should I boil an egg for a runny yolk?",
    "What's a good stretching routine after sitting all day?",
    "How do I get my tomato seedlings to stop getting leggy?",
    "What time zone is Auckland in?",
    "Suggest a name for a pet hamster.",
    "How do I say 'good morning' in Japanese?",
    "What should I pack for a week of skiing?",
    "How do I change a flat bicycle tyre?",
    "What's a good board for a beginner surfer?",
    "How many cups of coffee a day are too many?",
    "How do I fix a running toilet cistern?",
    "What's the plot of Moby-Dick, briefly?",
    "How do I make cold brew coffee at home?",
    "What's the best way to learn to juggle?",
    "How do I get better sleep when working late?",
    "Which houseplants survive in a dark flat?",
    "How do I negotiate a higher salary in an interview?",
    "What's the difference between baking soda and baking powder?",
    "How do I teach a dog to stop pulling on the lead?",
    "What's a good beginner telescope for looking at Saturn?",
)
