-- The audit table: one row per audit.Record, every field a column of the
-- same name (JSON and ClickHouse names agree), so that audit verify can
-- recompute each row's hash from what is stored.
--
-- at_ms keeps the record time exactly (the hash covers it); at is derived
-- from it, so the day partition can never disagree with the hashed time.
--
-- ReplacingMergeTree keyed by the chain position: the sink is at-least-once,
-- and an identical row written twice (a replay of the audit topic) collapses
-- on merge. An event reprocessed after a crash gets the same audit_id again
-- but a new position (a new segment), and both copies are kept: both belong
-- to their chains. Dashboard queries therefore deduplicate on audit_id.
CREATE TABLE IF NOT EXISTS audit (
    audit_id         String,
    kind             String,
    event_id         String,
    type             String,
    tenant_id        String,
    user_id          String,
    key              String,
    path             String,
    rule_id          String,
    outcome          String,
    reason           String,
    status           String,
    mode             String,
    sampler_session  String,
    model_requested  String,
    model_answered   String,
    input_tokens     Int64,
    output_tokens    Int64,
    request_summary  String,
    response_summary String,
    latency_ms       Float64,
    at_ms            Int64,
    at               DateTime MATERIALIZED toDateTime(intDiv(at_ms, 1000)),
    topic            String,
    partition        Int32,
    offset           Int64,
    consumer         String,
    chain            String,
    segment          String,
    seq              Int64,
    prev_hash        String,
    hash             String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (chain, segment, seq);
