-- title: Audit trail of one event
-- param: tenant_id String =
-- param: event_id String
--
-- Every audit record of the event in the order they were made: sampling
-- attempts and tool calls, then the decision. An event is its tenant and
-- its event_id: two tenants may send the same event_id. Without a
-- tenant_id (empty, the default) the trails of every tenant that sent the
-- event_id are listed, each on its own rows.
--
-- audit_by_event says where the rows are, so the audit table is read
-- through its primary key. Each audit_id of a tenant once (ids made before
-- issue 9 were the same for two tenants' events with one event_id); of an
-- event reprocessed after a crash, the latest copy.
SELECT
    tenant_id,
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
    SELECT tenant_id, at, at_ms, kind, audit_id, path, status, rule_id, outcome, reason,
        model_answered, model_requested, input_tokens, output_tokens, latency_ms, chain, seq
    FROM audit
    WHERE (chain, segment, seq) IN
    (
        SELECT chain, segment, seq
        FROM audit_by_event
        WHERE event_id = {event_id:String}
    )
        AND ({tenant_id:String} = '' OR tenant_id = {tenant_id:String})
    ORDER BY at_ms DESC
    LIMIT 1 BY tenant_id, audit_id
)
ORDER BY tenant_id, at_ms, chain, seq
