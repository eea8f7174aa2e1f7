-- The LLM stage's controls (issue 10): the risk tier that chose a request's
-- model, the tool of a tool_call record, the result cache's key and the
-- sampled decision a cached one reuses, and whether token counts were
-- estimated because the sampler reported none. Decisions carry their tier.
--
-- 18.16 has no ADD COLUMN IF NOT EXISTS: each column has a "-- when:"
-- query that returns a row while the column is still missing, so that a
-- run that stops half-way, or consumers migrating at once, get through.

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'audit' AND name = 'tier') = 0
ALTER TABLE audit ADD COLUMN tier String;

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'audit' AND name = 'tool') = 0
ALTER TABLE audit ADD COLUMN tool String;

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'audit' AND name = 'cache_key') = 0
ALTER TABLE audit ADD COLUMN cache_key String;

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'audit' AND name = 'source_audit_id') = 0
ALTER TABLE audit ADD COLUMN source_audit_id String;

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'audit' AND name = 'tokens_estimated') = 0
ALTER TABLE audit ADD COLUMN tokens_estimated UInt8;

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'decisions' AND name = 'tier') = 0
ALTER TABLE decisions ADD COLUMN tier String;
