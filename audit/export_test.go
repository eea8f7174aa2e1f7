package audit

// Test helpers for the external test package (audit_test), which drives
// the sink through the pipeline: pipeline imports audit, so those tests
// cannot live in package audit.
var (
	MigratedDB    = migratedDB
	WithDatabase  = withDatabase
	LinkedRecords = linkedRecords
	Await         = await
	WaitTimeout   = waitTimeout
	QueryRows     = queryRows
)
