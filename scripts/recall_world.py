"""The people, services and things one user of the long-history recall benchmark has.

Each user of scripts/recall_history.py gets a world drawn from these pools by a seeded
random generator: a developer at a company, two code projects with their services,
hosts, databases and tools, teammates, and a private life (family, a pet, a city). The
facts and the chatter of the user's history talk about the same world, so a fact shares
its vocabulary with many exchanges that do not hold it.

A service has a code name (`ledger-api`) and the plain descriptions people also use for
it ("the billing backend"): a question may name it either way, as people do.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


def words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


@dataclass(frozen=True)
class Role:
    """What a service does: descriptions that name it without its code name, and what
    another service calls it for (`purpose`, a verb phrase)."""

    aliases: tuple[str, ...]
    purpose: str
    asked_purpose: str  # the same purpose in other words, for questions


ROLES = (
    Role(("the billing backend", "the invoicing service"), "to create invoices", "for invoicing"),
    Role(("the login gateway", "the auth service"), "to check session tokens", "for logins"),
    Role(("the search indexer", "the search service"), "to index products", "for search"),
    Role(
        ("the notification sender", "the thing that sends emails and pushes"),
        "to send receipts",
        "to email customers",
    ),
    Role(
        ("the reports generator", "the reporting job"), "to build the monthly PDFs", "for reports"
    ),
    Role(("the payment processor", "the card-charging service"), "to charge cards", "for payments"),
    Role(
        ("the stock service", "the inventory backend"), "to look up stock levels", "for inventory"
    ),
    Role(("the image resizer", "the media service"), "to make thumbnails", "for pictures"),
    Role(("the tax calculator", "the pricing engine"), "to compute VAT", "for tax amounts"),
    Role(("the event ingester", "the analytics pipeline"), "to record clicks", "for tracking"),
    Role(("the feature flag proxy", "the flags service"), "to read rollout rules", "for toggles"),
    Role(("the geo lookup", "the address service"), "to validate postcodes", "for addresses"),
)
CODE_NAMES = words(
    "ledger atlas kestrel pylon harbor quill orbit nimbus beacon falcon juniper mosaic "
    "sparrow tundra vesper cobalt ember fjord granite helix lumen marble onyx prism relay "
    "sable talon willow zephyr basalt cinder dune garnet heron lynx otter raven sequoia"
)
SUFFIXES = ("-api", "-svc", "-worker", "", "-service")
LANGUAGES = ("Python", "Go", "TypeScript", "Kotlin", "Rust")
PROJECT_NAMES = words(
    "shop-backend mobile-api billing-platform infra data-pipeline admin-dashboard "
    "ml-serving partner-portal checkout-web warehouse-sync"
)
COMPANIES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne")
TEAM_ROLES = (
    "tech lead",
    "SRE",
    "DBA",
    "product manager",
    "designer",
    "QA lead",
    "security engineer",
    "frontend developer",
    "data engineer",
)
FIRST_NAMES = words(
    "Alice Bob Priya Chen Marta Kofi Yuki Lars Amara Diego Ingrid Tariq Sofia Mateo Hana "
    "Olu Greta Ravi Lucia Femi Noor Pavel Keiko Jonas Zainab Emeka Ana Bruno Leila Sven "
    "Mei Tomas Aisha Viktor Rosa Kwame Elif Hugo Dara Nils"
)
HOST_KINDS = ("db", "app", "worker", "build", "cache", "etl", "mon", "edge")
DOMAINS = ("int.{c}.io", "{c}.lan", "prod.{c}.internal", "corp.{c}.net")
CI_SYSTEMS = ("GitHub Actions", "GitLab CI", "Buildkite", "CircleCI", "Jenkins", "Drone")
CITIES = words(
    "Lisbon Porto Lyon Ghent Leipzig Gdansk Valencia Turin Bergen Tallinn Cork Graz "
    "Utrecht Malmo Brno Bilbao"
)
PET_KINDS = ("dog", "cat", "rabbit", "parrot")
PET_NAMES = ("Biscuit", "Pixel", "Mochi", "Juno", "Pepper", "Waffles", "Nacho", "Olive")

# Words for the same thing: facts are told with one, questions asked with another.
ENVIRONMENTS = {
    "staging": ("staging", "stage", "pre-prod", "the test environment"),
    "production": ("production", "prod", "live", "the live environment"),
    "dev": ("dev", "the dev cluster", "development", "the sandbox"),
}


@dataclass(frozen=True)
class Service:
    name: str
    role: Role
    language: str

    def referred(self, rng: random.Random) -> str:
        """How a question names it: mostly its code name, sometimes a description."""
        return self.name if rng.random() < 0.8 else rng.choice(self.role.aliases)


@dataclass(frozen=True)
class Person:
    name: str
    role: str


@dataclass(frozen=True)
class Project:
    scope: str  # the proxy's project id: directory name + 8 hex digits
    name: str
    services: tuple[Service, ...]
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class Family:
    partner: str
    kid: str
    kid_age: int
    sibling: str
    sibling_relation: str  # sister / brother
    parent_relation: str  # mum / dad
    friend: str
    pet_kind: str
    pet: str
    city: str


@dataclass(frozen=True)
class World:
    user: str
    me: str
    company: str
    projects: tuple[Project, ...]
    people: tuple[Person, ...]
    family: Family

    def person(self, rng: random.Random) -> Person:
        return rng.choice(self.people)

    def project(self, scope: str) -> Project:
        return next(project for project in self.projects if project.scope == scope)


def build_world(user: str, rng: random.Random) -> World:
    company = rng.choice(COMPANIES)
    domain = rng.choice(DOMAINS).format(c=company.lower())
    names = rng.sample(FIRST_NAMES, 14)
    code_names = rng.sample(CODE_NAMES, 12)
    roles = rng.sample(ROLES, len(ROLES))
    projects = []
    for number, project_name in enumerate(rng.sample(PROJECT_NAMES, 2)):
        services = tuple(
            Service(
                code_names[number * 6 + k] + rng.choice(SUFFIXES),
                roles[number * 6 + k],
                rng.choice(LANGUAGES),
            )
            for k in range(rng.randint(4, 6))
        )
        hosts = tuple(
            f"{kind}-{rng.randint(1, 19):02d}.{domain}" for kind in rng.sample(HOST_KINDS, 5)
        )
        scope = f"{project_name}-{rng.getrandbits(32):08x}"
        projects.append(Project(scope, project_name, services, hosts))
    people = tuple(Person(name, role) for name, role in zip(names[:8], TEAM_ROLES, strict=False))
    family = Family(
        partner=names[8],
        kid=names[9],
        kid_age=rng.randint(4, 14),
        sibling=names[10],
        sibling_relation=rng.choice(("sister", "brother")),
        parent_relation=rng.choice(("mum", "dad")),
        friend=names[11],
        pet_kind=rng.choice(PET_KINDS),
        pet=rng.choice(PET_NAMES),
        city=rng.choice(CITIES),
    )
    return World(user, names[12], company, tuple(projects), people, family)


def port(rng: random.Random) -> int:
    return rng.choice((rng.randint(8000, 8099), rng.randint(3000, 3099), rng.randint(9000, 9499)))


def env_word(rng: random.Random, env: str) -> str:
    """`env` as a fact states it: its usual name."""
    return ENVIRONMENTS[env][0] if rng.random() < 0.8 else ENVIRONMENTS[env][1]


def env_asked(rng: random.Random, env: str) -> str:
    """`env` in a question: any of its names."""
    return rng.choice(ENVIRONMENTS[env])
