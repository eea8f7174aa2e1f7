-- Retention for the tables that can be rebuilt or lose old rows without
-- losing evidence. The audit table itself has no TTL: expiring rows would
-- cut chains, and audit verify would rightly report them as deleted.
--
-- TTL arrived in ClickHouse 19.6; on older servers (Debian's 18.16) these
-- statements wait, and apply at the first start after an upgrade.

-- requires: 20.1
ALTER TABLE decisions MODIFY TTL decided_at + INTERVAL 90 DAY;

-- requires: 20.1
ALTER TABLE sampling_attempts MODIFY TTL at + INTERVAL 90 DAY;

-- requires: 20.1
ALTER TABLE audit_by_event MODIFY TTL at + INTERVAL 400 DAY;
