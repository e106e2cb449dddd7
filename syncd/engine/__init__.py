"""The sync engine's pure core: merge (reconcile) and plan. No I/O imports here."""

from .model import Candidate, Change, Conflict, Entity, Link, PlannedWrite
from .plan import baseline_after_write, needs_write, plan_entity
from .reconcile import decide, merge_record, new_entity_values, roundtrip, same

__all__ = [
    "Candidate",
    "Change",
    "Conflict",
    "Entity",
    "Link",
    "PlannedWrite",
    "baseline_after_write",
    "decide",
    "merge_record",
    "needs_write",
    "new_entity_values",
    "plan_entity",
    "roundtrip",
    "same",
]
