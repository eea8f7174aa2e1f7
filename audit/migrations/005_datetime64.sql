-- Millisecond time columns for servers that have DateTime64 (20.1) and
-- fromUnixTimestamp64Milli (20.5). They are MATERIALIZED from the exact
-- integer columns, so the sink inserts the same columns on every server.

-- requires: 20.5
ALTER TABLE audit ADD COLUMN IF NOT EXISTS at64 DateTime64(3) MATERIALIZED fromUnixTimestamp64Milli(at_ms);

-- requires: 20.5
ALTER TABLE decisions ADD COLUMN IF NOT EXISTS decided_at64 DateTime64(3) MATERIALIZED fromUnixTimestamp64Milli(toInt64(decided_ms));
