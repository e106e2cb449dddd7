"""Versioned schema migrations of the state store (each step and its bookkeeping in one transaction)."""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("syncd")


@migrations()
def m001_core(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY, kind TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT,
            stats TEXT
        );
        CREATE TABLE entities (
            id INTEGER PRIMARY KEY, sync TEXT NOT NULL, key TEXT, "values" TEXT NOT NULL,
            provenance TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'active', excluded TEXT NOT NULL DEFAULT '[]',
            dirty INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX entities_key ON entities (sync, key) WHERE key IS NOT NULL;
        CREATE INDEX entities_dirty ON entities (sync, dirty) WHERE dirty = 1;
        CREATE TABLE links (
            id INTEGER PRIMARY KEY, sync TEXT NOT NULL, app TEXT NOT NULL, remote_id TEXT NOT NULL,
            entity_id INTEGER NOT NULL REFERENCES entities(id), baseline TEXT NOT NULL, version TEXT,
            remote_updated_at TEXT, coerced TEXT NOT NULL DEFAULT '{}', seen_run INTEGER,
            UNIQUE (sync, app, remote_id), UNIQUE (entity_id, app)
        );
        CREATE INDEX links_seen ON links (sync, app, seen_run);
        CREATE TABLE changelog (
            id INTEGER PRIMARY KEY, at TEXT NOT NULL, run_id INTEGER, sync TEXT NOT NULL, entity_id INTEGER,
            field TEXT NOT NULL, old TEXT, new TEXT, app TEXT, reason TEXT NOT NULL, detail TEXT
        );
        CREATE INDEX changelog_entity ON changelog (entity_id, id);
        CREATE INDEX changelog_at ON changelog (at);
        CREATE TABLE conflicts (
            id INTEGER PRIMARY KEY, sync TEXT NOT NULL, entity_id INTEGER NOT NULL, field TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'field', candidates TEXT NOT NULL, policy TEXT NOT NULL,
            status TEXT NOT NULL, winner TEXT, resolution TEXT, created_at TEXT NOT NULL, resolved_at TEXT
        );
        CREATE UNIQUE INDEX conflicts_open ON conflicts (entity_id, field) WHERE status = 'open';
        CREATE INDEX conflicts_status ON conflicts (sync, status);
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, sync TEXT NOT NULL, app TEXT NOT NULL,
            object TEXT NOT NULL, op TEXT NOT NULL, entity_id INTEGER NOT NULL, remote_id TEXT,
            "values" TEXT NOT NULL, payload TEXT NOT NULL, expected_version TEXT,
            status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, error_kind TEXT,
            not_before TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE INDEX outbox_work ON outbox (status, app, id) WHERE status IN ('pending', 'inflight');
        CREATE INDEX outbox_entity ON outbox (entity_id, app, status);
        CREATE TABLE cursors (
            sync TEXT NOT NULL, app TEXT NOT NULL, cursor TEXT, updated_at TEXT NOT NULL,
            PRIMARY KEY (sync, app)
        );
        """
    )


@migrations()
def m002_daemon(db: Database) -> None:
    db.executescript(
        """
        CREATE TABLE inbox (
            id INTEGER PRIMARY KEY, app TEXT NOT NULL, event_id TEXT NOT NULL, object TEXT NOT NULL,
            record_id TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, received_at TEXT NOT NULL,
            processed_at TEXT, UNIQUE (app, event_id)
        );
        CREATE INDEX inbox_pending ON inbox (processed_at) WHERE processed_at IS NULL;
        CREATE TABLE leases (
            name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at REAL NOT NULL, acquired_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m003_quarantine(db: Database) -> None:
    """Quarantined reads (dead letters with op 'read') and webhook events that keep failing."""
    db.executescript(
        """
        CREATE INDEX outbox_dead_reads ON outbox (sync, app, remote_id) WHERE op = 'read' AND status = 'dead';
        ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE inbox ADD COLUMN not_before TEXT;
        ALTER TABLE inbox ADD COLUMN error TEXT;
        """
    )


@migrations()
def m004_erasure(db: Database) -> None:
    """Erasure receipts (no personal data: a salted hash of the key) and the suppression list."""
    db.executescript(
        """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE erasures (
            id INTEGER PRIMARY KEY, key_hash TEXT NOT NULL, requested_at TEXT NOT NULL,
            finished_at TEXT, status TEXT NOT NULL, apps TEXT NOT NULL
        );
        CREATE INDEX erasures_status ON erasures (status);
        CREATE TABLE suppressions (key_hash TEXT PRIMARY KEY, erasure_id INTEGER, created_at TEXT NOT NULL);
        """
    )


@migrations()
def m005_conflict_note(db: Database) -> None:
    """What a person should know to settle a conflict (the transform that ends an oscillation)."""
    db.executescript("ALTER TABLE conflicts ADD COLUMN note TEXT;")


@migrations()
def m006_link_alias(db: Database) -> None:
    """A second id the app keeps for a record across changes of its main id (see RemoteRecord.alias)."""
    db.executescript(
        """
        ALTER TABLE links ADD COLUMN alias TEXT;
        CREATE INDEX links_alias ON links (sync, app, alias) WHERE alias IS NOT NULL;
        """
    )


@migrations()
def m007_change_codes(db: Database) -> None:
    """A machine-readable reason code on change-log rows; older rows get theirs from their prose."""
    db.executescript(
        """
        ALTER TABLE changelog ADD COLUMN code TEXT;
        UPDATE changelog SET code = CASE
            WHEN reason LIKE 'changed in %' THEN 'changed'
            WHEN reason LIKE 'set merge of %' THEN 'merged'
            WHEN reason LIKE 'unsubscribed in %' THEN 'unsubscribed'
            WHEN reason LIKE 'conflict%' THEN 'conflict'
            WHEN reason LIKE 'missing from the complete %' THEN 'missing'
            ELSE 'other' END;
        CREATE INDEX changelog_run ON changelog (run_id, app, code);
        """
    )


@migrations()
def m008_coordination(db: Database) -> None:
    """Several daemons on one state: claims with an owner and an epoch on intents and dirty
    entities, a fencing epoch on leases, shared rate budgets and the daemon registry."""
    db.executescript(
        """
        ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
        ALTER TABLE outbox ADD COLUMN claim_epoch INTEGER;
        ALTER TABLE outbox ADD COLUMN claim_expires TEXT;
        ALTER TABLE entities ADD COLUMN dirty_gen INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE entities ADD COLUMN dirty_claimed_by TEXT;
        ALTER TABLE entities ADD COLUMN dirty_claim_expires REAL;
        ALTER TABLE leases ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE token_buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated REAL NOT NULL);
        CREATE TABLE daemons (
            daemon_id TEXT PRIMARY KEY, info TEXT NOT NULL, seen_at REAL NOT NULL, expires_at REAL NOT NULL
        );
        """
    )


@migrations()
def m009_app_health(db: Database) -> None:
    """What ``syncd status`` reports without a daemon: each app's last good and last failed read,
    its pause, its last complete listing; and each shared rate bucket's rate and burst."""
    db.executescript(
        """
        CREATE TABLE app_health (
            app TEXT PRIMARY KEY, last_ok_at TEXT, last_failed_at TEXT, failure TEXT, paused TEXT,
            complete_run INTEGER, updated_at TEXT NOT NULL
        );
        ALTER TABLE token_buckets ADD COLUMN rate REAL;
        ALTER TABLE token_buckets ADD COLUMN burst REAL;
        CREATE INDEX inbox_app_received ON inbox (app, received_at);
        """
    )


@migrations()
def m010_held_deletes(db: Database) -> None:
    """Deletes the mass-delete guard held back, with their evidence and a person's decision."""
    db.executescript(
        """
        CREATE TABLE held_deletes (
            id INTEGER PRIMARY KEY, sync TEXT NOT NULL, app TEXT NOT NULL, status TEXT NOT NULL,
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL, run_id INTEGER, trips INTEGER NOT NULL,
            linked INTEGER NOT NULL, missing INTEGER NOT NULL, sample TEXT NOT NULL, records TEXT NOT NULL,
            decided_by TEXT, decided_at TEXT, why TEXT, applied_at TEXT
        );
        CREATE UNIQUE INDEX held_deletes_open ON held_deletes (sync, app) WHERE status = 'held';
        CREATE INDEX held_deletes_status ON held_deletes (status, sync, app);
        """
    )


@migrations()
def m011_claim_order(db: Database) -> None:
    """Claims read an app's due intents oldest first: an index in that order, so each claim reads
    only the rows it takes instead of sorting every pending and in-flight intent of the app."""
    db.executescript("CREATE INDEX outbox_claim ON outbox (app, id) WHERE status IN ('pending', 'inflight');")


#: The change-log codes that count as drift (``count_drift``): the only rows its index holds.
DRIFT_CODES = "('changed', 'merged', 'unsubscribed', 'conflict', 'missing')"


@migrations()
def m012_compact_state(db: Database) -> None:
    """A denser state with nothing lost: provenance grouped by the read that gave the values
    (``encoding.pack_provenance``); finished intents without the values and payload nobody reads
    again; link baselines equal to their entity's values stored as a reference to them
    (``db.LINK_COLUMNS``); change-log rows that tell the rows folded in them (``encoding.plan_changelog``),
    with the position a fold moved them to (``seq``, indexed where set: followers read by it); no
    index on change-log times (pruning walks ids); drift counted from an index of the drift rows
    only."""
    db.executescript(
        f"""
        ALTER TABLE changelog ADD COLUMN folded TEXT;
        ALTER TABLE changelog ADD COLUMN seq INTEGER;
        CREATE INDEX changelog_seq ON changelog (seq) WHERE seq IS NOT NULL;
        DROP INDEX IF EXISTS changelog_at;
        DROP INDEX IF EXISTS changelog_run;
        CREATE INDEX changelog_drift ON changelog (run_id, app, code) WHERE code IN {DRIFT_CODES};
        UPDATE outbox SET "values" = '{{}}', payload = '{{}}' WHERE status IN ('done', 'superseded');
        UPDATE links SET baseline = '' WHERE baseline = (SELECT e."values" FROM entities e WHERE e.id = links.entity_id);
        """
    )
    from .db import _dumps, _loads  # the store module imports this one
    from .encoding import pack_provenance

    conn = db.conn
    last = 0
    while True:
        rows = conn.execute(
            'SELECT id, "values", provenance FROM entities WHERE id > ? ORDER BY id LIMIT 1000', (last,)
        ).fetchall()
        if not rows:
            break
        last = rows[-1][0]
        changed = []
        for entity_id, values_text, provenance_text in rows:
            provenance = _loads(provenance_text)
            if isinstance(provenance, dict):
                packed = _dumps(pack_provenance(_loads(values_text) or {}, provenance))
                changed.append((packed, entity_id))
        conn.executemany("UPDATE entities SET provenance = ? WHERE id = ?", changed)
