package pipeline

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/triage-dev/triage/audit"
)

// checkpoint closes every chain that had records linked since its last
// checkpoint with a signed checkpoint record (see audit.KindCheckpoint),
// when the pipeline has a signer. With exactly-once it runs as each
// transaction ends, so a committed transaction ends every chain it wrote
// with a signature; with at-least-once, on the commit interval. The caller
// holds the gate, shared or exclusive.
func (p *Pipeline) checkpoint() {
	p.chains.CheckpointUnsigned(p.cfg.Instance, func(chain string, cp *audit.Record) {
		p.client().Produce(p.workCtx, p.auditRecord(chain, cp), func(_ *kgo.Record, err error) {
			if err != nil && p.workCtx.Err() == nil {
				p.fail(fmt.Errorf("pipeline: produce checkpoint of %s: %w", chain, err))
			}
		})
	})
}
