"""What a planted fact is, before it is placed in a user's history: the sentences that
tell it (each said in passing, in one exchange of its own session) and the questions
asked about it later, each naming which of those sentences answer it."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from scripts.recall_world import Project, Service, World

QuestionKind = Literal["single-hop", "multi-hop", "temporal", "open-domain"]
QUESTION_KINDS: tuple[QuestionKind, ...] = ("single-hop", "multi-hop", "temporal", "open-domain")


@dataclass(frozen=True)
class Ask:
    kind: QuestionKind
    text: str
    # Every group must reach the request; any one mention of a group does. Mentions are
    # the plan's indexes: ((0,), (1,)) needs both, ((0, 1),) either.
    evidence: tuple[tuple[int, ...], ...]


@dataclass(frozen=True)
class Plan:
    scope: str  # the project the facts belong to ("" the general memory)
    mentions: tuple[str, ...]  # each told in passing, in a session of its own
    asks: tuple[Ask, ...]
    ordered: bool = False  # the mentions happen in this order (an earlier value, then a change)
    topic: Service | None = None  # what the exchanges that carry the mentions work on
    by_user: bool = False  # only the user can say it (their life); else either side
    key: str = ""  # what it is about: a second plan about the same thing is not planted


def once(scope: str, said: str, kind: QuestionKind, asked: str, **fields: object) -> Plan:
    """A fact told once and asked about once; `fields` as Plan's."""
    return Plan(scope, (said,), (Ask(kind, asked, ((0,),)),), **fields)  # type: ignore[arg-type]


def pick(rng: random.Random, phrasings: Sequence[str], **values: object) -> str:
    """One of `phrasings` with `values` filled in."""
    return rng.choice(phrasings).format(**values)


def capitalised(text: str) -> str:
    return text[:1].upper() + text[1:]


Planter = Callable[[World, Project, random.Random], Plan]
