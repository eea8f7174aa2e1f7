-- title: Sampling attempt latency by model (request sent → answer, ms)
-- param: window_hours UInt32 = 24
--
-- Every sampling attempt once (deduplicated on tenant_id and audit_id: ids
-- made before issue 9 were the same for two tenants' events with one
-- event_id), whatever its status; model is the one that answered, else the
-- one requested.
SELECT
    a_model AS model,
    count() AS attempts,
    countIf(a_status != 'ok') AS failed,
    round(quantileExact(0.5)(a_latency), 1) AS p50_ms,
    round(quantileExact(0.95)(a_latency), 1) AS p95_ms,
    round(quantileExact(0.99)(a_latency), 1) AS p99_ms
FROM
(
    SELECT
        tenant_id,
        audit_id,
        argMax(model, at_ms) AS a_model,
        argMax(status, at_ms) AS a_status,
        argMax(latency_ms, at_ms) AS a_latency
    FROM sampling_attempts
    WHERE at >= now() - INTERVAL {window_hours:UInt32} HOUR
    GROUP BY tenant_id, audit_id
)
GROUP BY model
ORDER BY model
