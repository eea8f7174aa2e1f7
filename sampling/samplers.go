package sampling

import (
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/triage-dev/triage/sampling/work"
)

// SamplerInfo describes a sampler session the pool has heard from lately:
// one that waits for work, holds a lease, or called within samplerFresh.
type SamplerInfo struct {
	// Name is the session's name as audit records carry it.
	Name string
	// Protocol is the MCP protocol version the session speaks.
	Protocol string
	// Mode is how it gets work: ModePull or ModePush.
	Mode string
	// Region is the region its token binds it to ("" for none).
	Region string
	// Tools says it declared that it runs tool loops.
	Tools bool
	// InFlight counts the leases it holds now.
	InFlight int
	// Quarantined says its circuit breaker keeps work from it.
	Quarantined bool
	// LastSeen is when it last asked for work.
	LastSeen time.Time
}

// samplerFresh is how long a sampler counts as connected after it last
// asked for work: a pulling sampler calls again at least every
// work.MaxWaitMS, and a 2026-07-28 one holds no session in between.
const samplerFresh = time.Duration(work.MaxWaitMS)*time.Millisecond + 5*time.Second

// maxSeen bounds the samplers the pool remembers between sweeps.
const maxSeen = 1000

// saw records that the session named name asked for work.
func (p *Pool) saw(name, protocol, mode, region string, tools bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sawLocked(name, protocol, mode, region, tools)
}

func (p *Pool) sawLocked(name, protocol, mode, region string, tools bool) {
	now := time.Now()
	if len(p.seen) >= maxSeen {
		p.sweepSeenLocked(now)
	}
	// Every work call lands here: update the record in place.
	s := p.seen[name]
	if s == nil {
		if len(p.seen) >= maxSeen {
			return
		}
		s = &SamplerInfo{Name: name}
		p.seen[name] = s
	}
	s.Protocol, s.Mode, s.Region, s.Tools, s.LastSeen = protocol, mode, region, tools, now
}

func (p *Pool) sweepSeenLocked(now time.Time) {
	for name, s := range p.seen {
		if p.active[name] == 0 && now.Sub(s.LastSeen) > samplerFresh {
			delete(p.seen, name)
		}
	}
}

// Samplers returns the samplers connected now, by name: those waiting for
// work or holding a lease, and those that asked for work within the last
// 35 s (a pulling sampler asks at least every 30 s).
func (p *Pool) Samplers() []SamplerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweepSeenLocked(time.Now())
	inFlight := map[string]int{}
	for _, l := range p.leases {
		inFlight[l.session]++
	}
	out := make([]SamplerInfo, 0, len(p.seen))
	for _, s := range p.seen {
		info := *s
		info.InFlight = inFlight[s.Name]
		if b := p.breakers[s.Name]; b != nil && b.state != gobreaker.StateClosed {
			info.Quarantined = true
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b SamplerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Items is how many ambiguous items the pool holds now, queued or leased:
// what triage_sampling_items reports.
func (p *Pool) Items() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) + len(p.leases)
}

// SamplersGauge is the gauge triage_sampling_samplers: the samplers
// connected now (see Samplers), read at each scrape. "No sampler while
// items wait" is the LLM stage's outage.
func (p *Pool) SamplersGauge() prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "triage_sampling_samplers",
		Help: "Sampler sessions connected: waiting for work, holding a lease, or asking for work within the last 35 s.",
	}, func() float64 { return float64(len(p.Samplers())) })
}

// protocolOf is the protocol version a session speaks.
func protocolOf(ss *mcp.ServerSession) string {
	if ip := ss.InitializeParams(); ip != nil {
		return ip.ProtocolVersion
	}
	return work.ProtocolMRTR // stateless sessions do not initialize
}
