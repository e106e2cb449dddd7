"""The sync engine's pure core: merge (reconcile) and plan. No I/O imports here."""

from .ingest import (
    IDENTITY,
    IngestMappingView,
    canonical_values,
    clashing_records,
    in_scope_after,
    mass_delete_stop,
    new_key,
    retry_delay,
    tombstone,
)
from .model import Candidate, Change, Conflict, Entity, Link, PlannedWrite, ReasonCode
from .plan import baseline_after_write, needs_write, plan_entity
from .reconcile import decide, merge_record, new_entity_values, roundtrip, same

__all__ = [
    "IDENTITY",
    "Candidate",
    "Change",
    "Conflict",
    "Entity",
    "IngestMappingView",
    "Link",
    "PlannedWrite",
    "ReasonCode",
    "baseline_after_write",
    "canonical_values",
    "clashing_records",
    "decide",
    "in_scope_after",
    "mass_delete_stop",
    "merge_record",
    "needs_write",
    "new_entity_values",
    "new_key",
    "plan_entity",
    "retry_delay",
    "roundtrip",
    "same",
    "tombstone",
]
