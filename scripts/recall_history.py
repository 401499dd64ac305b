"""A deterministic generator of long multi-session histories, and of the questions asked
about them later, for scripts/bench_recall_history.py. No network, no model: seeded
random choices over hand-written tables: the people and things of a user's world
(recall_world), facts and the questions about them (recall_coding_facts,
recall_team_facts, recall_personal), and the chatter around them (recall_threads,
recall_chatter, recall_agent_text, recall_everyday).

Each user (a developer) has two code projects, worked on with a coding agent, and a
general memory, talked to through a chat client: 16 dated sessions spread over six months
before `today`, at least 300 exchanges. Facts are told in passing, inside exchanges about
something else (a fact sentence before or after the user's request, or a note in the
middle of the agent's answer), among chatter about the same services and people. Then,
in a new session, questions in other words: single-hop, multi-hop (two facts from
different sessions), temporal (when, before and after a change) and open-domain (a task
that should follow a remembered preference); and off-topic questions, about nothing the
history holds.

Questions are split into a "tune" and a "test" half by a hash of a fixed seed and the
question's id: tuning may look at "tune" only.
"""

from __future__ import annotations

import datetime
import hashlib
import random
from dataclasses import dataclass

from scripts.recall_coding_facts import INFRA_PLANTERS
from scripts.recall_everyday import OFF_TOPIC
from scripts.recall_personal import GENERAL, PERSONAL_PLANTERS
from scripts.recall_plan import Plan, capitalised
from scripts.recall_team_facts import TEAM_PLANTERS
from scripts.recall_threads import coding_thread, everyday_thread
from scripts.recall_world import Project, Service, build_world

SEED = 20
SPLIT_SEED = "recall-holdout-1"  # never change: it keeps "test" unseen
USERS = 8
MIN_EXCHANGES = 300
HISTORY_DAYS = 180
SESSIONS = {"first": 7, "second": 5, GENERAL: 4}
OFF_TOPIC_PER_USER = 20
DAY = 86_400
CASUAL_OPENINGS = ("fyi ", "heads up: ", "remember ", "for the record, ", "decided: ")


@dataclass(frozen=True)
class Exchange:
    id: str
    user: str
    project: str  # "" the general memory
    session: str
    at: float  # epoch seconds
    client: str
    question: str
    answer: str


@dataclass(frozen=True)
class Question:
    id: str
    user: str
    project: str
    kind: str  # single-hop, multi-hop, temporal, open-domain, off-topic
    text: str
    # Groups of exchange ids: each group must reach the request, any one of it does.
    evidence: tuple[tuple[str, ...], ...]
    split: str  # tune | test


@dataclass(frozen=True)
class Dataset:
    exchanges: tuple[Exchange, ...]  # in the order they happened, per user
    questions: tuple[Question, ...]
    off_topic: tuple[Question, ...]
    facts: dict[str, str]  # exchange id -> the fact sentence it carries


@dataclass
class _Session:
    id: str
    scope: str
    start: float
    focus: tuple[Service, ...]
    mentions: list[tuple[Plan, int]]


def split_of(question_id: str) -> str:
    digest = hashlib.sha256(f"{SPLIT_SEED}:{question_id}".encode()).digest()
    return "tune" if digest[0] % 2 == 0 else "test"


def build_dataset(
    users: int = USERS,
    seed: int = SEED,
    today: datetime.date | None = None,
    off_topic: int = OFF_TOPIC_PER_USER,
) -> Dataset:
    """`users` histories ending a few days before `today` (default: the UTC date now,
    so that "last week" in a question means what the proxy's clock says)."""
    today = today or datetime.datetime.now(datetime.UTC).date()
    end = datetime.datetime.combine(today, datetime.time(), datetime.UTC).timestamp()
    exchanges: list[Exchange] = []
    questions: list[Question] = []
    unrelated: list[Question] = []
    facts: dict[str, str] = {}
    for number in range(users):
        history = _History(f"dev{number}", random.Random(f"{seed}:{number}"), end)
        exchanges += history.exchanges
        questions += history.questions
        facts |= history.facts
        unrelated += history.off_topic(off_topic)
    return Dataset(tuple(exchanges), tuple(questions), tuple(unrelated), facts)


def scaled_exchanges(count: int, seed: int = SEED) -> list[Exchange]:
    """At least `count` exchanges, from as many generated histories as it takes (for
    latency at 10,000 or 100,000 memories; the caller puts them in one project)."""
    end = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC).timestamp()
    found: list[Exchange] = []
    number = 0
    while len(found) < count:
        found += _History(f"scale{number}", random.Random(f"{seed}:scale:{number}"), end).exchanges
        number += 1
    return found[:count]


class _History:
    def __init__(self, user: str, rng: random.Random, end: float) -> None:
        self.user, self._rng = user, rng
        self.world = build_world(user, rng)
        self.exchanges: list[Exchange] = []
        self.questions: list[Question] = []
        self.facts: dict[str, str] = {}
        sessions = self._sessions(end)
        plans = self._plans(sessions)
        ids = self._write(sessions)
        for plan in plans:
            for ask in plan.asks:
                evidence = tuple(tuple(ids[(id(plan), i)] for i in group) for group in ask.evidence)
                qid = f"{user}-q{len(self.questions):03d}"
                self.questions.append(
                    Question(qid, user, plan.scope, ask.kind, ask.text, evidence, split_of(qid))
                )

    def off_topic(self, count: int) -> list[Question]:
        scopes = [project.scope for project in self.world.projects] + [GENERAL]
        asked = self._rng.sample(OFF_TOPIC, min(count, len(OFF_TOPIC)))
        return [
            Question(qid, self.user, self._rng.choice(scopes), "off-topic", text, (), split_of(qid))
            for n, text in enumerate(asked)
            for qid in [f"{self.user}-off{n:02d}"]
        ]

    def _sessions(self, end: float) -> list[_Session]:
        rng = self._rng
        first, second = self.world.projects
        counts = {first.scope: SESSIONS["first"], second.scope: SESSIONS["second"]}
        counts[GENERAL] = SESSIONS[GENERAL]
        days = rng.sample(range(2, HISTORY_DAYS), sum(counts.values()))
        sessions = []
        for scope, count in counts.items():
            services = self.world.project(scope).services if scope != GENERAL else ()
            for _ in range(count):
                day = days.pop()
                hour = rng.randint(18, 22) if scope == GENERAL else rng.randint(8, 18)
                start = end - day * DAY + hour * 3600 + rng.randint(0, 3599)
                focus = tuple(rng.sample(services, min(2, len(services))))
                session_id = "-".join(  # a UUID's shape, as clients send
                    f"{rng.getrandbits(bits):0{bits // 4}x}" for bits in (32, 16, 16, 16, 48)
                )
                sessions.append(_Session(session_id, scope, start, focus, []))
        return sorted(sessions, key=lambda session: session.start)

    def _plans(self, sessions: list[_Session]) -> list[Plan]:
        """Every planter once per project (the general memory: the personal ones), each
        plan's mentions in sessions of their own; a second plan about the same thing
        (same key, mention or question) is dropped."""
        rng, plans = self._rng, []
        seen: set[str] = set()
        for project in self.world.projects:
            planters = [(planter, project) for planter in INFRA_PLANTERS + TEAM_PLANTERS]
            planters += [(planter, project) for planter in PERSONAL_PLANTERS] * (
                project is self.world.projects[0]
            )
            for planter, where in planters:
                plan = planter(self.world, where, rng)
                keys = {plan.scope + ":" + text for text in (plan.key, *plan.mentions) if text}
                keys |= {plan.scope + ":" + ask.text for ask in plan.asks}
                if keys & seen:
                    continue
                seen |= keys
                own = [session for session in sessions if session.scope == plan.scope]
                chosen = rng.sample(own, len(plan.mentions))
                if plan.ordered:
                    chosen.sort(key=lambda session: session.start)
                for index, session in enumerate(chosen):
                    session.mentions.append((plan, index))
                plans.append(plan)
        return plans

    def _write(self, sessions: list[_Session]) -> dict[tuple[int, int], str]:
        """Every session's exchanges, in time order; returns each mention's exchange id.
        A session is threads of work in a shuffled order; a mention goes in a thread about
        its topic, at any of its exchanges."""
        rng = self._rng
        lengths = [
            rng.randint(8, 18) if session.scope == GENERAL else rng.randint(14, 30)
            for session in sessions
        ]
        while sum(lengths) < MIN_EXCHANGES + 20:
            lengths[rng.randrange(len(lengths))] += 1
        where: dict[tuple[int, int], str] = {}
        for session, length in zip(sessions, lengths, strict=True):
            threads: list[list[tuple[tuple[str, str], tuple[Plan, int] | None]]] = []
            for mention in session.mentions:
                thread = self._thread(session, mention[0].topic, told=True)
                told = rng.randrange(len(thread))
                threads.append(
                    [(pair, mention if n == told else None) for n, pair in enumerate(thread)]
                )
            while sum(map(len, threads)) < length:
                threads.append([(pair, None) for pair in self._thread(session, None)])
            rng.shuffle(threads)
            at = session.start
            client = (
                "open-webui" if session.scope == GENERAL else rng.choice(("claude-code", "codex"))
            )
            for (question, answer), carried in (item for thread in threads for item in thread):
                at += rng.randint(60, 540)
                exchange_id = f"{self.user}-e{len(self.exchanges):04d}"
                if carried is not None:
                    plan, index = carried
                    question, answer, said = _told(
                        rng, plan.mentions[index], question, answer, plan.by_user
                    )
                    where[(id(plan), index)] = exchange_id
                    self.facts[exchange_id] = said
                self.exchanges.append(
                    Exchange(
                        exchange_id,
                        self.user,
                        session.scope,
                        session.id,
                        at,
                        client,
                        question,
                        answer,
                    )
                )
        return where

    def _thread(
        self, session: _Session, topic: Service | None, told: bool = False
    ) -> list[tuple[str, str]]:
        """A thread of work in `session` on `topic` (a service it focuses on when None);
        now and then, in a project, a personal one, unless a project's fact is `told`."""
        rng = self._rng
        if session.scope == GENERAL or (not told and rng.random() < 0.04):
            return everyday_thread(self.world, rng)
        project = self.world.project(session.scope)
        return coding_thread(project, topic or _focus(rng, session, project), rng)


def _focus(rng: random.Random, session: _Session, project: Project) -> Service:
    if session.focus and rng.random() < 0.7:
        return rng.choice(session.focus)
    return rng.choice(project.services)


def _told(
    rng: random.Random, fact: str, question: str, answer: str, by_user: bool
) -> tuple[str, str, str]:
    """The exchange with `fact` said in passing, by the user around their request or by
    the agent in its answer (after its first paragraph), always inside what the proxy
    stores of it (the question's first 1,000 characters, 2,000 in all); and the fact as
    it was said."""
    if by_user or rng.random() < 0.6:
        shape = rng.randrange(4 if len(question) < 600 else 2)
        if shape == 0:
            return f"{capitalised(fact)}. {question}", answer, fact
        if shape == 1:
            return f"quick note before we start: {fact}.\n\n{question}", answer, fact
        if shape == 2:
            return f"{question} (btw {fact})", answer, fact
        return f"{question}\n\nalso, {fact}", answer, fact
    for casual in CASUAL_OPENINGS:
        fact = fact.removeprefix(casual)
    lead = rng.choice(
        ("Note:", "Also, from the repo:", "One thing I noticed in there:", "For context:")
    )
    head, _, rest = answer.partition("\n\n")
    said = f"{head}\n\n{lead} {fact}."
    return question, f"{said}\n\n{rest}" if rest else said, fact
