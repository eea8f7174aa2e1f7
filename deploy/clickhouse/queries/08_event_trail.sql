-- title: Audit trail of one event
-- param: event_id String
--
-- Every audit record of the event in the order they were made: sampling
-- attempts and tool calls, then the decision. audit_by_event says where the
-- rows are, so the audit table is read through its primary key. Each
-- audit_id once; of an event reprocessed after a crash, the latest copy.
SELECT
    at,
    kind,
    audit_id,
    path,
    status,
    rule_id,
    outcome,
    reason,
    if(model_answered != '', model_answered, model_requested) AS model,
    input_tokens,
    output_tokens,
    latency_ms,
    chain,
    seq
FROM
(
    SELECT at, at_ms, kind, audit_id, path, status, rule_id, outcome, reason,
        model_answered, model_requested, input_tokens, output_tokens, latency_ms, chain, seq
    FROM audit
    WHERE (chain, segment, seq) IN
    (
        SELECT chain, segment, seq
        FROM audit_by_event
        WHERE event_id = {event_id:String}
    )
    ORDER BY at_ms DESC
    LIMIT 1 BY audit_id
)
ORDER BY at_ms, chain, seq
