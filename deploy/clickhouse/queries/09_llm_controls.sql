-- title: LLM controls by type: sampled, cached, refused by the guards
-- param: window_hours UInt32 = 24
--
-- The decisions of ambiguous events (every path but rule), one per event
-- (tenant_id and event_id): decided by an LLM (sampled), answered from the
-- result cache (cached), or given the fallback because a guard refused the
-- request (rate_limited, budget_exceeded, policy: the tenant opted out) or
-- because sampling failed (other_fallbacks: no sampler, timeout, invalid
-- answer, error). cache_share is the share of would-be LLM requests that
-- the cache saved.
SELECT
    d_type AS type,
    countIf(d_path = 'sampled') AS sampled,
    countIf(d_path = 'cache') AS cached,
    round(if(sampled + cached = 0, 0, cached / (sampled + cached)), 4) AS cache_share,
    countIf(d_path = 'fallback' AND d_reason = 'rate_limited') AS rate_limited,
    countIf(d_path = 'fallback' AND d_reason = 'budget_exceeded') AS budget_exceeded,
    countIf(d_path = 'fallback' AND d_reason = 'policy') AS policy,
    countIf(d_path = 'fallback' AND d_reason NOT IN ('rate_limited', 'budget_exceeded', 'policy')) AS other_fallbacks
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
WHERE d_path != 'rule'
GROUP BY type
ORDER BY type
