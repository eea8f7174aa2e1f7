-- title: Tool calls inside sampling by type, tool and status
-- param: window_hours UInt32 = 24
--
-- Every tool call an LLM made while deciding, each once (deduplicated on
-- tenant_id and audit_id): ok, denied (an argument outside the event's
-- scope: another account, another tenant) or error.
SELECT
    t_type AS type,
    t_tool AS tool,
    t_status AS status,
    count() AS calls,
    round(quantileExact(0.5)(t_latency), 3) AS p50_ms
FROM
(
    SELECT
        tenant_id,
        audit_id,
        argMax(type, at_ms) AS t_type,
        argMax(tool, at_ms) AS t_tool,
        argMax(status, at_ms) AS t_status,
        argMax(latency_ms, at_ms) AS t_latency
    FROM audit
    WHERE at >= now() - INTERVAL {window_hours:UInt32} HOUR
        AND kind = 'tool_call'
    GROUP BY tenant_id, audit_id
)
GROUP BY type, tool, status
ORDER BY type, tool, status
