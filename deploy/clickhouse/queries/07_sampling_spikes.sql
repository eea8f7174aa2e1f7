-- title: Sampling spikes: hours with more LLM requests than the threshold
-- param: window_hours UInt32 = 168
-- param: threshold UInt64 = 1000
--
-- Sampling attempts per hour and tenant, each attempt once (deduplicated on
-- tenant_id and audit_id, as in 03); only the hours over the threshold are
-- listed.
SELECT
    toStartOfHour(a_at) AS hour,
    tenant_id,
    count() AS requests
FROM
(
    SELECT
        tenant_id,
        audit_id,
        argMax(at, at_ms) AS a_at
    FROM sampling_attempts
    WHERE at >= now() - INTERVAL {window_hours:UInt32} HOUR
    GROUP BY tenant_id, audit_id
)
GROUP BY hour, tenant_id
HAVING requests > {threshold:UInt64}
ORDER BY hour, requests DESC, tenant_id
