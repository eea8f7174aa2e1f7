-- title: LLM tokens by tenant, model and risk tier
-- param: window_hours UInt32 = 24
--
-- Tokens of each sampling attempt once (deduplicated on tenant_id and
-- audit_id, as in 03): as the samplers reported them, or estimated from the
-- text's length when they reported none (estimated counts those attempts).
-- The tier is the rules file's risk tier that chose the model preferences.
SELECT
    tenant_id,
    a_model AS model,
    a_tier AS tier,
    count() AS attempts,
    sum(a_in) AS tokens_in,
    sum(a_out) AS tokens_out,
    sum(a_in + a_out) AS tokens_total,
    sum(a_estimated) AS estimated
FROM
(
    SELECT
        tenant_id,
        audit_id,
        argMax(if(model_answered != '', model_answered, model_requested), at_ms) AS a_model,
        argMax(tier, at_ms) AS a_tier,
        argMax(input_tokens, at_ms) AS a_in,
        argMax(output_tokens, at_ms) AS a_out,
        argMax(tokens_estimated, at_ms) AS a_estimated
    FROM audit
    WHERE at >= now() - INTERVAL {window_hours:UInt32} HOUR
        AND kind = 'sampling_attempt'
    GROUP BY tenant_id, audit_id
)
GROUP BY tenant_id, model, tier
ORDER BY tokens_total DESC, tenant_id, model, tier
