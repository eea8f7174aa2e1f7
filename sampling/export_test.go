package sampling

// Sessions reports how many legacy sessions the pool keeps a record of, for
// tests that check the records do not outlive their sessions.
func Sessions(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}
