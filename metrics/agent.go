package metrics

import "github.com/prometheus/client_golang/prometheus"

// The sync agents' metrics, per connector and agent, as this replica sees
// its own connections.
var (
	// AgentConnected is 1 while the agent holds a connection to this replica.
	AgentConnected = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dirgate_agent_connected", Help: "1 while the sync agent is connected to this replica, else 0.",
	}, []string{"connector", "agent"})
	// AgentConnects counts the connections an agent opened (reconnects).
	AgentConnects = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_agent_connects_total", Help: "Connections the sync agent opened to this replica (the first and every reconnect).",
	}, []string{"connector", "agent"})
	// AgentChecks counts password checks sent to an agent, by result
	// (answered, unreachable).
	AgentChecks = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "dirgate_agent_checks_total", Help: "Password checks sent to the sync agent, by result: answered (by the directory, either way) or unreachable.",
	}, []string{"connector", "agent", "result"})
	// AgentCheckSeconds is the latency of answered checks, per agent: a
	// slow agent among fast ones of a connector shows.
	AgentCheckSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "dirgate_agent_check_seconds", Help: "Time from sending a password check to the agent to its answer.",
		Buckets: prometheus.ExponentialBuckets(0.002, 2, 12),
	}, []string{"connector", "agent"})
	// AgentInFlight is an agent's queue depth: requests sent and not answered.
	AgentInFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dirgate_agent_in_flight", Help: "Requests sent to the sync agent and not yet answered.",
	}, []string{"connector", "agent"})
	// AgentRTT is the round-trip time of the last heartbeat.
	AgentRTT = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dirgate_agent_rtt_seconds", Help: "Round-trip time of the sync agent's last heartbeat.",
	}, []string{"connector", "agent"})
	// AgentCertExpiry is when an enrolled, unrevoked agent's certificate
	// expires: the agent renews it four months before; alert when that
	// is overdue.
	AgentCertExpiry = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "dirgate_agent_cert_expiry_timestamp_seconds", Help: "When the sync agent's client certificate expires (Unix time); the agent renews it four months before.",
	}, []string{"connector", "agent"})
)

// agentVecs are the metrics with an agent label.
var agentVecs = []interface {
	DeletePartialMatch(prometheus.Labels) int
}{AgentConnected, AgentConnects, AgentChecks, AgentCheckSeconds, AgentInFlight, AgentRTT, AgentCertExpiry}

// ForgetAgent deletes every series of agent id: one revoked or gone for
// long would otherwise keep its series for the life of the process.
func ForgetAgent(id string) {
	for _, v := range agentVecs {
		v.DeletePartialMatch(prometheus.Labels{"agent": id})
	}
}

func init() {
	Registry.MustRegister(AgentConnected, AgentConnects, AgentChecks, AgentCheckSeconds, AgentInFlight, AgentRTT, AgentCertExpiry)
}
