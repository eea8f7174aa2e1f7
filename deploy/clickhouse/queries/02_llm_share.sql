-- title: Share of events that reached the LLM, by type
-- param: window_hours UInt32 = 24
--
-- An event reached the LLM when at least one sampling attempt left for a
-- model (guards that refused the request do not count). An event is its
-- tenant and its event_id; uniqExact over both makes duplicates harmless.
SELECT
    type,
    uniqExactIf(tenant_id, event_id, kind = 'decision') AS events,
    uniqExactIf(tenant_id, event_id, kind = 'sampling_attempt'
        AND status NOT IN ('rate_limited', 'budget_exceeded', 'denied')) AS reached_llm,
    round(if(events = 0, 0, reached_llm / events), 4) AS share
FROM audit
WHERE at >= now() - INTERVAL {window_hours:UInt32} HOUR
    AND kind IN ('decision', 'sampling_attempt')
GROUP BY type
ORDER BY type
