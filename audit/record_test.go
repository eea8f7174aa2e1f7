package audit

import "testing"

// TestIDTenantScoped: an audit_id is the same for the same tenant, event,
// kind and n, as reprocessing needs, and differs for another tenant with
// the same event_id (issue 9) or a split of the same text elsewhere.
func TestIDTenantScoped(t *testing.T) {
	id := ID("tenant-a", "ev-1", KindDecision, 0)
	if again := ID("tenant-a", "ev-1", KindDecision, 0); again != id {
		t.Errorf("ID changed between two calls: %s, %s", id, again)
	}
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		t.Errorf("ID %q is not formatted as a UUID", id)
	}
	for _, other := range []string{
		ID("tenant-b", "ev-1", KindDecision, 0),
		ID("tenant-a", "ev-1", KindSampling, 0),
		ID("tenant-a", "ev-1", KindDecision, 1),
		ID("tenant-", "aev-1", KindDecision, 0),
		ID("", "tenant-aev-1", KindDecision, 0),
		ID("tenant-a\x00ev-1", "", KindDecision, 0),
	} {
		if other == id {
			t.Errorf("another tenant, event, kind or n got the id %s too", id)
		}
	}
}
