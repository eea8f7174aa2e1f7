-- Tables the dashboards read instead of scanning the whole audit table,
-- each filled by a materialized view as audit rows are inserted. They are
-- keyed by audit_id, so replayed inserts collapse like the audit table's and
-- the queries' audit_id deduplication stays exact.

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

-- Every audit row again, ordered by event: the trail of one event_id is a
-- primary-key lookup instead of a full scan of the chain-ordered table.
CREATE TABLE IF NOT EXISTS audit_by_event (
    event_id         String,
    audit_id         String,
    kind             String,
    type             String,
    tenant_id        String,
    user_id          String,
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
    at               DateTime,
    chain            String,
    segment          String,
    seq              Int64,
    hash             String
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (event_id, audit_id, at_ms);

CREATE MATERIALIZED VIEW IF NOT EXISTS audit_by_event_mv TO audit_by_event AS
SELECT
    event_id, audit_id, kind, type, tenant_id, user_id, path, rule_id, outcome,
    reason, status, mode, sampler_session, model_requested, model_answered,
    input_tokens, output_tokens, request_summary, response_summary, latency_ms,
    at_ms, at, chain, segment, seq, hash
FROM audit;
