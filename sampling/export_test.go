package sampling

// Sessions reports how many legacy sessions the pool keeps a record of, for
// tests that check the records do not outlive their sessions.
func Sessions(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// Breakers reports how many sampler sessions' breakers the pool keeps, for
// tests that check they do not outlive their sessions.
func Breakers(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.breakers)
}
