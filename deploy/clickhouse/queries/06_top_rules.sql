-- title: Top rules by hits
-- param: window_hours UInt32 = 24
-- param: limit UInt32 = 10
--
-- A hit is an event whose decision names the rule: the rule decided it, or
-- sent it to sampling. One per event (tenant_id and event_id).
SELECT
    d_type AS type,
    d_rule AS rule_id,
    count() AS hits,
    countIf(d_path = 'rule') AS decided,
    countIf(d_path != 'rule') AS sent_to_sampling
FROM
(
    SELECT
        tenant_id,
        event_id,
        argMax(type, decided_ms) AS d_type,
        argMax(rule_id, decided_ms) AS d_rule,
        argMax(path, decided_ms) AS d_path
    FROM decisions
    WHERE decided_at >= now() - INTERVAL {window_hours:UInt32} HOUR
    GROUP BY tenant_id, event_id
)
WHERE d_rule != ''
GROUP BY type, rule_id
ORDER BY hits DESC, type, rule_id
LIMIT {limit:UInt32}
