-- Tables the dashboards read instead of scanning the whole audit table,
-- each filled by a materialized view as audit rows are inserted. An
-- identical replayed row collapses here as in the audit table, and the
-- queries deduplicate on audit_id.

-- Sampling attempts only, narrow, in time order: LLM latency, tokens and
-- request-rate panels.
CREATE TABLE IF NOT EXISTS sampling_attempts (
    audit_id        String,
    event_id        String,
    type            String,
    tenant_id       String,
    model           String,
    mode            String,
    status          String,
    input_tokens    Int64,
    output_tokens   Int64,
    latency_ms      Float64,
    at_ms           Int64,
    at              DateTime
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMMDD(at)
ORDER BY (at, audit_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS sampling_attempts_mv TO sampling_attempts AS
SELECT
    audit_id, event_id, type, tenant_id,
    if(model_answered != '', model_answered, model_requested) AS model,
    mode, status, input_tokens, output_tokens, latency_ms, at_ms, at
FROM audit
WHERE kind = 'sampling_attempt';

-- Where each event's audit rows are: the trail of one event_id is a
-- primary-key lookup here, then one on the audit table's (chain, segment,
-- seq), instead of a full scan of the chain-ordered audit table. Narrow on
-- purpose: a second copy of every audit row would double the insert cost.
CREATE TABLE IF NOT EXISTS audit_by_event (
    event_id String,
    audit_id String,
    chain    String,
    segment  String,
    seq      Int64,
    at_ms    Int64,
    at       DateTime
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (event_id, chain, segment, seq);

CREATE MATERIALIZED VIEW IF NOT EXISTS audit_by_event_mv TO audit_by_event AS
SELECT event_id, audit_id, chain, segment, seq, at_ms, at
FROM audit;
