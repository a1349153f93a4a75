package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// The agent measure (issue 18): the same slapd read and checked by a
// direct connector and by a via: agent connector, side by side, with a
// fresh `dirgate serve` for each (the hub with its agent on loopback).

// agentRun is what the agent measure needs from the OpenLDAP measures.
type agentRun struct {
	setup  *ldapSetup
	binary string
	work   string
	users  int
	dur    time.Duration
	rounds int
}

// agentBench adds the agent rows: full sync from an empty cache and full
// re-reads, and binds by email, each through the agent and directly.
func agentBench(rep *report, a agentRun) error {
	if !wanted("agent") {
		return nil
	}
	dir := filepath.Join(a.work, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var procs []*replica
	defer func() {
		for _, p := range procs {
			p.stop()
		}
	}()
	start := func(name, cfg, admin string, args ...string) (*replica, error) {
		r, err := startBenchProc(a.binary, filepath.Join(dir, name), cfg, admin, args...)
		if r != nil {
			procs = append(procs, r)
		}
		return r, err
	}
	hubAddrs, err := freeAddrs(filepath.Join(dir, "hub", "cache"))
	if err != nil {
		return err
	}
	agentPort, err := freePort()
	if err != nil {
		return err
	}
	hub, err := start("hub", a.hubConfig(hubAddrs, dir, agentPort), hubAddrs.admin, "serve")
	if err != nil {
		return err
	}
	agentCfg, err := a.enrollAgent(hub, filepath.Join(dir, "agent1"), agentPort)
	if err != nil {
		return err
	}
	agentProc, err := start("agent1", "", "", "agent", "-c", agentCfg)
	if err != nil {
		return err
	}
	if err := waitUntil(60*time.Second, "the agent connects", func() error { return agentConnected(hub) }); err != nil {
		return agentProc.failed(err)
	}

	// The fills of empty caches, one after the other: the hub's first run
	// through the agent (its own first run at start found no agent), then
	// the direct server's first run, which it starts by itself. Then full
	// re-reads, alternating, that find everything unchanged. Durations are
	// the runs' own records; CPU is the processes' user and system time.
	via := []*replica{hub, agentProc}
	cpu0 := cpuOf(via...)
	viaFill, err := fullSync(hub)
	if err != nil {
		// A failed read through the agent is a result of this measure,
		// not a reason to lose the other measures' rows; nothing else can
		// be measured without the hub's cache.
		rep.add(fmt.Sprintf("agent: full sync of %d users into an empty cache, through the agent", a.users), "FAILED", "", "", "≤ 1.2×")
		rep.notes = append(rep.notes, fmt.Sprintf("agent: the fill through the agent failed, so the agent rows are missing: %v", err))
		return nil
	}
	viaFillCPU := cpuOf(via...) - cpu0
	directAddrs, err := freeAddrs(filepath.Join(dir, "direct", "cache"))
	if err != nil {
		return err
	}
	direct, err := start("direct", a.setup.config(directAddrs), directAddrs.admin, "serve")
	if err != nil {
		return err
	}
	directFill, err := idleRun(direct)
	if err != nil {
		return fmt.Errorf("direct fill: %w", err)
	}
	directFillCPU := cpuOf(direct) // since its start: the fill and the start-up
	if viaFill.Added != directFill.Added || viaFill.Added < a.users {
		return fmt.Errorf("the fills added %d entries through the agent, %d directly, for %d users", viaFill.Added, directFill.Added, a.users)
	}
	var viaRe, directRe, viaReCPU, directReCPU []time.Duration
	var reRatios []float64
	for range max(a.rounds, minCloudRounds) {
		c := cpuOf(direct)
		d, err := fullSync(direct)
		if err != nil {
			return fmt.Errorf("direct full sync: %w", err)
		}
		directReCPU = append(directReCPU, cpuOf(direct)-c)
		c = cpuOf(via...)
		v, err := fullSync(hub)
		if err != nil {
			return fmt.Errorf("full sync through the agent: %w", err)
		}
		viaReCPU = append(viaReCPU, cpuOf(via...)-c)
		directRe, viaRe = append(directRe, d.Duration), append(viaRe, v.Duration)
		reRatios = append(reRatios, float64(v.Duration)/float64(d.Duration))
	}
	slices.Sort(reRatios)
	rep.add(fmt.Sprintf("agent: full sync of %d users into an empty cache, through the agent vs a direct connector", a.users),
		viaFill.Duration.Round(time.Millisecond).String(), directFill.Duration.Round(time.Millisecond).String()+" direct",
		ratio(viaFill.Duration, directFill.Duration), "≤ 1.2×")
	mv, md := median(viaRe), median(directRe)
	rep.add(fmt.Sprintf("agent: full re-read of %d unchanged users, through the agent vs direct (median of %d; ratio: the median round's)", a.users, len(viaRe)),
		mv.Round(time.Millisecond).String(), md.Round(time.Millisecond).String()+" direct", fmt.Sprintf("%.2f×", reRatios[len(reRatios)/2]), "≤ 1.2×")
	rep.add("agent: CPU of the fill, hub + agent vs the direct server (its start-up included)",
		viaFillCPU.Round(10*time.Millisecond).String(), directFillCPU.Round(10*time.Millisecond).String()+" direct",
		ratio(viaFillCPU, directFillCPU), "")
	mvc, mdc := median(viaReCPU), median(directReCPU)
	rep.add("agent: CPU of a full re-read, hub + agent vs the direct server (median)",
		mvc.Round(10*time.Millisecond).String(), mdc.Round(10*time.Millisecond).String()+" direct", ratio(mvc, mdc), "")

	// Binds by email, pass-through, concurrency 8, alternating rounds.
	e := a.setup.e
	viaT := target{url: "ldap://" + hubAddrs.ldap, dn: svcDN, pw: svcPW, base: e["BASE"]}
	dirT := target{url: "ldap://" + directAddrs.ldap, dn: svcDN, pw: svcPW, base: e["BASE"]}
	var vres, dres []loadResult
	for range a.rounds {
		v, err := load(viaT, 8, a.dur, a.users, bindEmailOp(e["USER_PW"]))
		if err != nil {
			return fmt.Errorf("binds through the agent: %w", err)
		}
		d, err := load(dirT, 8, a.dur, a.users, bindEmailOp(e["USER_PW"]))
		if err != nil {
			return fmt.Errorf("direct binds: %w", err)
		}
		vres, dres = append(vres, v), append(dres, d)
	}
	v, d := best(vres), best(dres)
	rep.add("agent: bind by email through the agent vs a direct connector, concurrency 8: ops/s (p50 / p99)",
		fmt.Sprintf("%.0f (%s / %s)", v.opsPerSec, v.p50, v.p99), fmt.Sprintf("%.0f (%s / %s) direct", d.opsPerSec, d.p50, d.p99),
		fmt.Sprintf("%.2f×", v.opsPerSec/d.opsPerSec), "")
	rep.notes = append(rep.notes, "agent: hub, agent and slapd on loopback of one machine (2 cores shared by slapd, both servers and the load); the agent's pool_size is the default 16")
	return nil
}

// cpuOf is the user and system CPU time the processes used so far (0 for
// one whose time cannot be read).
func cpuOf(ps ...*replica) time.Duration {
	var sum time.Duration
	for _, p := range ps {
		d, _ := cpuTime(p.pid())
		sum += d
	}
	return sum
}

// freeAddrs picks loopback ports for a server with its cache in cacheDir.
func freeAddrs(cacheDir string) (serverAddrs, error) {
	var ports [3]string
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return serverAddrs{}, err
		}
		ports[i] = "127.0.0.1:" + p
	}
	return serverAddrs{cache: cacheDir, ldap: ports[0], oidc: ports[1], admin: ports[2]}, nil
}

// hubConfig is the hub's configuration: the bench connector read through
// an agent on the agent listener at agentPort.
func (a agentRun) hubConfig(addrs serverAddrs, dir, agentPort string) string {
	return fmt.Sprintf(`cache: {dir: %s}
ldap: {listen: %q, size_limit: 1000000, max_page_size: 5000}
service_accounts: [{dn: %q, password_hash: %q}]
connectors:
  - name: bench
    type: openldap
    via: agent
    root_dn: %q
log: {level: warn}
admin: {listen: %q, token_env: DIRGATE_BENCH_ADMIN_TOKEN}
agent: {listen: "127.0.0.1:%s", ca_dir: %s, server_names: [127.0.0.1]}
`, addrs.cache, addrs.ldap, svcDN, a.setup.svcHash, a.setup.e["BASE"], addrs.admin, agentPort, filepath.Join(dir, "agent-ca"))
}

// enrollAgent writes an agent's agent.yaml in dir, gets a token from the
// hub's admin API and enrolls the agent; it returns the file's path.
func (a agentRun) enrollAgent(hub *replica, dir, agentPort string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	e := a.setup.e
	cfg := fmt.Sprintf(`hub: https://127.0.0.1:%s
state_dir: %s
name: bench-agent
log: {level: warn}
connector:
  name: bench
  type: openldap
  host: %s
  port: %s
  encryption: none
  bind_dn: %q
  bind_password_env: DIRGATE_BENCH_SYNC_PW
  root_dn: %q
  page_size: 1000
  timeout: 60s
`, agentPort, filepath.Join(dir, "state"), e["HOST"], e["PORT"], e["SYNC_DN"], e["BASE"])
	path := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	code, out, err := hub.adminBody("POST", "/api/v1/agents/tokens", strings.NewReader(`{"connector":"bench"}`))
	if err != nil || code != http.StatusCreated {
		return "", fmt.Errorf("create an enrollment token: %v %d %s", err, code, out)
	}
	var tok struct {
		Token    string `json:"token"`
		CASHA256 string `json:"ca_sha256"`
	}
	if err := json.Unmarshal(out, &tok); err != nil {
		return "", err
	}
	if out, err := exec.Command(a.binary, "agent", "enroll", "-c", path, "--token", tok.Token, "--ca-sha256", tok.CASHA256).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dirgate agent enroll: %v\n%s", err, out)
	}
	return path, nil
}

// agentConnected reports whether an agent is connected to the hub.
func agentConnected(hub *replica) error {
	code, out, err := hub.admin("GET", "/api/v1/agents")
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("list agents: %v %d %s", err, code, out)
	}
	var v struct {
		Agents []struct {
			Connected bool `json:"connected"`
		} `json:"agents"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return err
	}
	for _, a := range v.Agents {
		if a.Connected {
			return nil
		}
	}
	return fmt.Errorf("no agent connected: %s", out)
}

// benchRun is the part of a sync run's record the agent measure reads.
type benchRun struct {
	Added    int           `json:"added"`
	Read     int           `json:"read"`
	Duration time.Duration `json:"duration"`
	Error    string        `json:"error"`
}

// fullSync runs a full sync of the bench connector through the server's
// admin API, after the run in progress if there is one, and returns its
// record.
func fullSync(r *replica) (benchRun, error) {
	for {
		code, out, err := r.adminBody("POST", "/api/v1/connectors/bench/sync", strings.NewReader(`{"mode":"full"}`))
		if err != nil {
			return benchRun{}, err
		}
		if code == http.StatusConflict {
			if _, err := waitIdle(r); err != nil {
				return benchRun{}, err
			}
			continue
		}
		var v struct {
			Error  string    `json:"error"`
			Result *benchRun `json:"result"`
		}
		if err := json.Unmarshal(out, &v); err != nil {
			return benchRun{}, fmt.Errorf("%s: sync answered %d: %v", r.name, code, err)
		}
		if code != http.StatusOK || v.Result == nil {
			return benchRun{}, fmt.Errorf("%s: sync answered %d: %s", r.name, code, v.Error)
		}
		return *v.Result, nil
	}
}

// idleRun waits until the server runs no sync of the bench connector and
// returns its last run, which must have succeeded.
func idleRun(r *replica) (benchRun, error) {
	last, err := waitIdle(r)
	if err == nil && last.Error != "" {
		err = fmt.Errorf("%s: the last run failed: %s", r.name, last.Error)
	}
	return last, err
}

// waitIdle waits until the server runs no sync of the bench connector and
// has run one, and returns the last.
func waitIdle(r *replica) (benchRun, error) {
	var last benchRun
	err := waitUntil(10*time.Minute, r.name+" finishes its run", func() error {
		code, out, err := r.admin("GET", "/api/v1/connectors/bench")
		if err != nil || code != http.StatusOK {
			return fmt.Errorf("connector status: %v %d %s", err, code, out)
		}
		var st struct {
			Running bool      `json:"running"`
			LastRun *benchRun `json:"last_run"`
		}
		if err := json.Unmarshal(out, &st); err != nil {
			return err
		}
		if st.Running || st.LastRun == nil {
			return errors.New("running")
		}
		last = *st.LastRun
		return nil
	})
	return last, err
}

// startBenchProc starts `dirgate ARGS` with its log in dir (and, when cfg
// is not empty, `-c` a dirgate.yaml written there); a server, whose admin
// listener is admin, is waited for until that answers.
func startBenchProc(binary, dir, cfg, admin string, args ...string) (*replica, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	r := &replica{name: filepath.Base(dir), logPath: filepath.Join(dir, "dirgate.log"), done: make(chan struct{})}
	r.addrs.admin = admin
	if cfg != "" {
		path := filepath.Join(dir, "dirgate.yaml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return nil, err
		}
		args = append(args, "-c", path)
	}
	logf, err := os.Create(r.logPath)
	if err != nil {
		return nil, err
	}
	r.cmd = exec.Command(binary, args...)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	if err := r.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { _ = r.cmd.Wait(); logf.Close(); close(r.done) }()
	if r.addrs.admin == "" {
		return r, nil
	}
	err = waitUntil(60*time.Second, r.name+" answers on its admin listener", func() error {
		code, _, err := r.admin("GET", "/healthz")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("/healthz: %d", code)
		}
		return err
	})
	if err != nil {
		return r, r.failed(err)
	}
	return r, nil
}
