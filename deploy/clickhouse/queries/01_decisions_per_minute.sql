-- title: Decisions per minute by path and outcome
-- param: window_hours UInt32 = 24
--
-- One decision per event, an event being its tenant and its event_id (two
-- tenants may send the same event_id): the topic is read at least once, and
-- an event reprocessed after a crash may be decided twice; the later
-- decision counts.
-- (Aliases never reuse a column's name: ClickHouse would substitute them.)
SELECT
    toStartOfMinute(d_at) AS minute,
    d_path AS path,
    d_outcome AS outcome,
    count() AS decisions
FROM
(
    SELECT
        tenant_id,
        event_id,
        argMax(path, decided_ms) AS d_path,
        argMax(outcome, decided_ms) AS d_outcome,
        argMax(decided_at, decided_ms) AS d_at
    FROM decisions
    WHERE decided_at >= now() - INTERVAL {window_hours:UInt32} HOUR
    GROUP BY tenant_id, event_id
)
GROUP BY minute, path, outcome
ORDER BY minute, path, outcome
