-- title: Fallback decisions by reason
-- param: window_hours UInt32 = 24
--
-- Decisions whose path is fallback: sampling could not decide (no sampler,
-- timeout, error, invalid answer), one per event (tenant_id and event_id).
SELECT
    d_type AS type,
    d_reason AS reason,
    count() AS fallbacks
FROM
(
    SELECT
        tenant_id,
        event_id,
        argMax(type, decided_ms) AS d_type,
        argMax(path, decided_ms) AS d_path,
        argMax(reason, decided_ms) AS d_reason
    FROM decisions
    WHERE decided_at >= now() - INTERVAL {window_hours:UInt32} HOUR
    GROUP BY tenant_id, event_id
)
WHERE d_path = 'fallback'
GROUP BY type, reason
ORDER BY fallbacks DESC, type, reason
