-- The decisions table: one row per record of the decisions topic.
--
-- Superseded: 006 moves the table to one keyed by (tenant_id, event_id),
-- since two tenants may send the same event_id. The statement below stays
-- as it was applied.
--
-- ReplacingMergeTree keyed by event_id with decided_ms as the version: a
-- replay of the topic collapses on merge, and of two decisions for one event
-- (one reprocessed after a crash) the later one is kept. Merges only
-- collapse rows within a day partition, so queries deduplicate on event_id
-- (argMax by decided_ms) rather than trusting FINAL.
CREATE TABLE IF NOT EXISTS decisions (
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
ORDER BY event_id;
