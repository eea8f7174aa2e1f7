-- title: Sampling spikes: hours with more LLM requests than the threshold
-- param: window_hours UInt32 = 168
-- param: threshold UInt64 = 1000
--
-- Sampling attempts per hour and tenant, each attempt once; only the hours
-- over the threshold are listed.
SELECT
    toStartOfHour(a_at) AS hour,
    a_tenant AS tenant_id,
    count() AS requests
FROM
(
    SELECT
        audit_id,
        argMax(at, at_ms) AS a_at,
        argMax(tenant_id, at_ms) AS a_tenant
    FROM sampling_attempts
    WHERE at >= now() - INTERVAL {window_hours:UInt32} HOUR
    GROUP BY audit_id
)
GROUP BY hour, tenant_id
HAVING requests > {threshold:UInt64}
ORDER BY hour, requests DESC, tenant_id
