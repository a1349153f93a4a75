// Package demodir is the bundled demo directory: a small LDAP server that
// serves demo.ldif the way an OpenLDAP upstream would (simple bind against
// userPassword, paged subtree searches, entryUUID). `dirgate serve --demo`
// starts it so a newcomer has an upstream to sync from with nothing but Go
// installed. It is not used outside the demo.
package demodir

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/dn"
	"github.com/dirgate/dirgate/filter"
)

//go:embed demo.ldif
var demoLDIF []byte

// Base is the naming context of the demo directory.
const Base = "dc=demo,dc=dirgate"

// SyncDN and SyncPassword are the demo's service account for dirgate's
// connector.
const (
	SyncDN       = "cn=sync,dc=demo,dc=dirgate"
	SyncPassword = "sync-pw"
)

// SampleLogin and SamplePassword sign in a demo user (alice), over LDAP or
// OIDC; the demo's start-up banner shows them.
const (
	SampleLogin    = "alice@demo.dirgate"
	SamplePassword = "alice-pw"
)

// Server is a running demo directory.
type Server struct {
	srv     *gldap.Server
	entries []*record
	keys    []string // dn keys, parallel to entries
	addr    string

	mu    sync.Mutex
	bound map[int]bool
}

// Start serves the demo directory on addr (e.g. "127.0.0.1:0").
func Start(addr string) (*Server, error) {
	recs, err := parseLDIF(bytes.NewReader(demoLDIF))
	if err != nil {
		return nil, fmt.Errorf("demo directory: %w", err)
	}
	s := &Server{entries: recs, bound: map[int]bool{}}
	for _, r := range recs {
		k, err := dn.Key(r.dn)
		if err != nil {
			return nil, fmt.Errorf("demo directory: %w", err)
		}
		s.keys = append(s.keys, k)
	}
	srv, err := gldap.NewServer(gldap.WithLogger(hclog.New(&hclog.LoggerOptions{Level: hclog.Off})),
		gldap.WithOnClose(func(id int) { s.mu.Lock(); delete(s.bound, id); s.mu.Unlock() }))
	if err != nil {
		return nil, err
	}
	mux, err := gldap.NewMux()
	if err != nil {
		return nil, err
	}
	if err := mux.Bind(s.bind); err != nil {
		return nil, err
	}
	if err := mux.Search(s.search); err != nil {
		return nil, err
	}
	if err := srv.Router(mux); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo directory: listen %s: %w", addr, err)
	}
	s.srv, s.addr = srv, ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	return s, nil
}

// Addr returns the host:port the demo directory listens on.
func (s *Server) Addr() string { return s.addr }

// Port returns the port the demo directory listens on.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// Stop shuts the demo directory down.
func (s *Server) Stop() error { return s.srv.Stop() }

func (s *Server) bind(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewBindResponse(gldap.WithResponseCode(gldap.ResultInvalidCredentials))
	defer func() { _ = w.Write(resp) }()
	m, err := r.GetSimpleBindMessage()
	if err != nil || m.Password == "" {
		return
	}
	k, err := dn.Key(m.UserName)
	if err != nil {
		return
	}
	for i, rec := range s.entries {
		if s.keys[i] != k {
			continue
		}
		if rec.values("pwdAccountLockedTime") != nil {
			resp.SetDiagnosticMessage("account locked")
			return
		}
		for _, pw := range rec.values("userPassword") {
			if pw == string(m.Password) {
				s.mu.Lock()
				s.bound[r.ConnectionID()] = true
				s.mu.Unlock()
				resp.SetResultCode(gldap.ResultSuccess)
				return
			}
		}
	}
}

// view adapts a record to the filter package.
type view struct{ *record }

func (v view) Values(name string) []string { return v.values(name) }

func (s *Server) search(w *gldap.ResponseWriter, r *gldap.Request) {
	done := r.NewSearchDoneResponse(gldap.WithResponseCode(gldap.ResultSuccess))
	defer func() { _ = w.Write(done) }()
	m, err := r.GetSearchMessage()
	if err != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		return
	}
	s.mu.Lock()
	bound := s.bound[r.ConnectionID()]
	s.mu.Unlock()
	if !bound {
		done.SetResultCode(gldap.ResultInsufficientAccessRights)
		return
	}
	f, err := filter.Parse(m.Filter, filter.Limits{})
	base, kerr := dn.Key(m.BaseDN)
	if err != nil || kerr != nil {
		done.SetResultCode(gldap.ResultProtocolError)
		return
	}
	// Paging: the cookie is the index of the next entry to consider.
	start, size := 0, len(s.entries)
	var paging *gldap.ControlPaging
	for _, c := range m.Controls {
		if p, ok := c.(*gldap.ControlPaging); ok {
			paging = p
			if p.PagingSize > 0 {
				size = int(p.PagingSize)
			}
			start, _ = strconv.Atoi(string(p.Cookie))
		}
	}
	sent, i := 0, start
	for ; i < len(s.entries) && sent < size; i++ {
		k := s.keys[i]
		inScope := dn.Under(k, base)
		switch m.Scope {
		case gldap.BaseObject:
			inScope = k == base
		case gldap.SingleLevel:
			inScope = dn.Parent(k) == base
		}
		if !inScope || !f.Match(view{s.entries[i]}) {
			continue
		}
		out := r.NewSearchResponseEntry(s.entries[i].dn)
		for _, a := range s.entries[i].attrs {
			if wanted(a.name, m.Attributes) {
				out.AddAttribute(a.name, a.values)
			}
		}
		_ = w.Write(out)
		sent++
	}
	if paging != nil {
		next := &gldap.ControlPaging{}
		if i < len(s.entries) {
			next.Cookie = []byte(strconv.Itoa(i))
		}
		done.SetControls(next)
	}
}

// wanted applies the requested attribute list; userPassword is never
// returned and operational attributes only by name.
func wanted(name string, req []string) bool {
	ln := strings.ToLower(name)
	if ln == "userpassword" {
		return false
	}
	all := len(req) == 0
	for _, r := range req {
		if strings.EqualFold(r, name) {
			return true
		}
		all = all || r == "*"
	}
	return all && ln != "entryuuid" && ln != "pwdaccountlockedtime"
}
