-- Synchronous decisions (issue 13): the channel a decision was asked on
-- (mcp: the decide tool, http: POST /v1/decide; empty for an event read
-- from a topic) and who asked (the HTTP token's name, or the MCP client and
-- session). Guarded like 007: 18.16 has no ADD COLUMN IF NOT EXISTS.

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'audit' AND name = 'channel') = 0
ALTER TABLE audit ADD COLUMN channel String;

-- when: SELECT 1 FROM system.one WHERE (SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'audit' AND name = 'caller') = 0
ALTER TABLE audit ADD COLUMN caller String;
