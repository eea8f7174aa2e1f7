-- An event is (tenant_id, event_id): two tenants may send the same event_id
-- (issue 9). 002 keyed the decisions table by event_id alone, so a merge
-- kept one of two tenants' decisions. This migration moves the table to
-- one keyed by (tenant_id, event_id), under the same name.
--
-- ClickHouse cannot change a sorting key's prefix in place, and Debian's
-- 18.16 has neither EXCHANGE TABLES nor conditional DDL. So the new table
-- is built beside the old one, the two are swapped by one RENAME, and the
-- old rows are copied into the new table. The tables on the way:
--
--   decisions_v2          the new table, until the swap
--   decisions_v1_copying  the old table from the swap until its rows are
--                         all copied
--   decisions_v1_old      the old table once copied, kept as it was: drop
--                         it when the new one has been checked
--
-- Each step has a "-- when:" query on system.tables (see schema.go) that
-- returns a row while the step is still to do, so a run that stops after
-- any statement is finished by the next, and processes that migrate at once
-- (consumers started together) each get through:
-- - after statements 1 to 3, whoever did them, the tables are swapped;
-- - a migrator renames decisions_v1_copying away (statement 5) only right
--   after it copied all of its rows itself (statement 4), so a migrator
--   that records this migration finds every old row in the new table, even
--   if the one that swapped died while copying;
-- - a step another migrator did first fails here (the RENAME of a table
--   already renamed), and its "-- when:" query then says it is done.
--
-- The swap comes before the copy: from the swap on, the sink writes to the
-- new table, so a decision stored while the migration runs (by a consumer
-- of an older build, say) lands in the old table before the swap, and is
-- copied, or in the new one after it. Until the copy ends, the dashboards
-- miss the old decisions.
--
-- Decisions of two tenants that a merge already collapsed under the old key
-- are gone from the old table; the audit table, keyed by chain position,
-- still holds both decision records.

-- 1. The new table: 002's columns, keyed by tenant and event. Not "AS
-- decisions": on 18.16 a CREATE that reads the structure of a table that
-- another migrator renames at the same time deadlocks with that RENAME
-- (TestMigrateConcurrently hung so). 004 and 005 are repeated at the end.
-- when: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = 'decisions' AND sorting_key = 'event_id'
CREATE TABLE IF NOT EXISTS decisions_v2 (
    event_id    String,
    type        String,
    tenant_id   String,
    key         String,
    outcome     String,
    path        String,
    rule_id     String,
    reason      String,
    model       String,
    latency_ms  Float64,
    decided_ms  UInt64,
    decided_at  DateTime MATERIALIZED toDateTime(intDiv(decided_ms, 1000))
) ENGINE = ReplacingMergeTree(decided_ms)
PARTITION BY toYYYYMMDD(decided_at)
ORDER BY (tenant_id, event_id);

-- 2. The swap, in one statement, so that the sink's inserts find a
-- decisions table before and after it.
-- when: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND (name = 'decisions' AND sorting_key = 'event_id' OR name = 'decisions_v2') HAVING count() = 2
RENAME TABLE decisions TO decisions_v1_copying, decisions_v2 TO decisions;

-- 3. The server renames the two tables one after the other: one that died
-- between them left no decisions table. Finish the swap.
-- when: SELECT 1 FROM system.tables WHERE database = currentDatabase() HAVING countIf(name = 'decisions') = 0 AND countIf(name = 'decisions_v2') = 1 AND countIf(name = 'decisions_v1_copying') = 1
RENAME TABLE decisions_v2 TO decisions;

-- 4. The copy. A copy cut short runs again whole, as does one that two
-- migrators ran at once: the copies of a row share key and version, so
-- they collapse on merge, and the dashboards deduplicate anyway.
-- when: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = 'decisions_v1_copying'
INSERT INTO decisions (event_id, type, tenant_id, key, outcome, path, rule_id, reason, model, latency_ms, decided_ms)
SELECT event_id, type, tenant_id, key, outcome, path, rule_id, reason, model, latency_ms, decided_ms
FROM decisions_v1_copying;

-- 5. The copy is whole: the new name says so to every later run.
-- when: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND name = 'decisions_v1_copying'
RENAME TABLE decisions_v1_copying TO decisions_v1_old;

-- 6. A migrator that found the old key just before another one swapped the
-- tables creates decisions_v2 again, after the swap: an empty table that
-- nothing writes to.
-- when: SELECT 1 FROM system.tables WHERE database = currentDatabase() AND (name = 'decisions' AND sorting_key = 'tenant_id, event_id' OR name = 'decisions_v2') HAVING count() = 2
DROP TABLE IF EXISTS decisions_v2;

-- 7, 8. What 004 and 005 gave the old table, on servers that have it. On
-- older ones these wait with 004's and 005's own, which then apply to the
-- new table.
-- requires: 20.1
ALTER TABLE decisions MODIFY TTL decided_at + INTERVAL 90 DAY;

-- requires: 20.5
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS decided_at64 DateTime64(3) MATERIALIZED fromUnixTimestamp64Milli(toInt64(decided_ms));
