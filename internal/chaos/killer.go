package chaos

import (
	"context"
	"math/rand/v2"
	"time"
)

// killer SIGKILLs a random running consumer cfg.Kills times, each after a
// wait drawn from [KillMin, KillMax], and with SamplerKillChance the
// sampler too. The slots restart what it kills.
type killer struct {
	cfg          Config
	consumers    []*slot
	sampler      *slot
	kills        int
	samplerKills int
}

// run kills on schedule until the schedule or ctx ends. The counts are
// read after it returns.
func (k *killer) run(ctx context.Context) {
	rng := rand.New(rand.NewPCG(uint64(k.cfg.Seed), 0x636861736f73))
	for range k.cfg.Kills {
		wait := k.cfg.KillMin
		if span := k.cfg.KillMax - k.cfg.KillMin; span > 0 {
			wait += time.Duration(rng.Int64N(int64(span) + 1))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A consumer still down from an earlier kill cannot be killed:
		// take the next one that runs.
		first := rng.IntN(len(k.consumers))
		killed := false
		for i := range k.consumers {
			if k.consumers[(first+i)%len(k.consumers)].kill() {
				k.kills++
				killed = true
				break
			}
		}
		if !killed {
			k.cfg.Logger.Warn("chaos: no consumer running to kill; kill skipped")
		}
		if k.sampler != nil && rng.Float64() < k.cfg.SamplerKillChance && k.sampler.kill() {
			k.samplerKills++
		}
	}
}
