-- title: LLM tokens by tenant and model
-- param: window_hours UInt32 = 24
--
-- Tokens as the samplers reported them, each sampling attempt once
-- (deduplicated on tenant_id and audit_id, as in 03).
SELECT
    tenant_id,
    a_model AS model,
    count() AS attempts,
    sum(a_in) AS tokens_in,
    sum(a_out) AS tokens_out,
    sum(a_in + a_out) AS tokens_total
FROM
(
    SELECT
        tenant_id,
        audit_id,
        argMax(model, at_ms) AS a_model,
        argMax(input_tokens, at_ms) AS a_in,
        argMax(output_tokens, at_ms) AS a_out
    FROM sampling_attempts
    WHERE at >= now() - INTERVAL {window_hours:UInt32} HOUR
    GROUP BY tenant_id, audit_id
)
GROUP BY tenant_id, model
ORDER BY tokens_total DESC, tenant_id, model
