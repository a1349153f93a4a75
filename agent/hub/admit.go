package hub

import (
	"net"
	"sync"
)

// Bounds on connect streams waiting for their hello. An agent opens one
// connect stream per replica and sends its hello at once, so a handful
// covers reconnections racing a connection's teardown; beyond that an
// agent (or a copy of its key) could hold the hub's memory and handlers
// with streams that never say hello.
const (
	maxHelloPerAgent   = 4
	maxHelloPerAddress = 16
	// maxHello bounds the hello frame (a few hundred bytes in practice).
	maxHello = 64 << 10
)

// helloGate counts connect streams that have not said hello yet, by agent
// and by remote host.
type helloGate struct {
	mu      sync.Mutex
	byAgent map[string]int
	byAddr  map[string]int
}

// admit reserves a place for a stream of agent from addr, or reports
// that either has too many waiting; release gives the place back.
func (g *helloGate) admit(agent, addr string) (release func(), ok bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byAgent == nil {
		g.byAgent, g.byAddr = map[string]int{}, map[string]int{}
	}
	if g.byAgent[agent] >= maxHelloPerAgent || g.byAddr[host] >= maxHelloPerAddress {
		return nil, false
	}
	g.byAgent[agent]++
	g.byAddr[host]++
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			decrement(g.byAgent, agent)
			decrement(g.byAddr, host)
		})
	}, true
}

func decrement(m map[string]int, k string) {
	if m[k]--; m[k] <= 0 {
		delete(m, k)
	}
}
