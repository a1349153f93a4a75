package admin

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	dirsync "github.com/dirgate/dirgate/sync"
)

const maxBody = 64 << 10

func (s *server) apiConnectors(w http.ResponseWriter, r *http.Request) {
	sts, err := s.b.Status(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, connectorsAnswer{Connectors: nonNil(sts)})
}

// connectorsAnswer is the body of GET /api/v1/connectors.
type connectorsAnswer struct {
	Connectors []dirsync.ConnectorStatus `json:"connectors"`
}

// connector resolves the {name} of the request; on failure it has answered.
func (s *server) connector(w http.ResponseWriter, r *http.Request) (*dirsync.ConnectorStatus, bool) {
	st, err := s.findConnector(r.Context(), r.PathValue("name"))
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return nil, false
	}
	return st, true
}

func (s *server) apiConnector(w http.ResponseWriter, r *http.Request) {
	st, ok := s.connector(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// syncResponse is the body of the sync and apply endpoints.
type syncResponse struct {
	Connector string      `json:"connector"`
	Status    string      `json:"status"` // ok, dry_run, blocked, running, failed
	Error     string      `json:"error,omitempty"`
	Blocked   string      `json:"blocked,omitempty"`
	Result    *resultJSON `json:"result,omitempty"`
}

// runSync starts a run and maps the outcome to an HTTP status and body; it
// also returns the result itself (nil when none) for the console.
func (s *server) runSync(r *http.Request, name string, o dirsync.Options) (int, syncResponse, *dirsync.Result) {
	s.log.Info("admin: sync requested", "connector", name, "trigger", o.Trigger, "dry_run", o.DryRun,
		"mode", o.Mode, "force", o.Force, "remote", r.RemoteAddr)
	res, err := s.b.SyncNow(s.syncCtx(r), name, o)
	out := syncResponse{Connector: name}
	status := http.StatusOK
	var blocked *dirsync.BlockedError
	switch {
	case errors.Is(err, dirsync.ErrRunning):
		out.Status, out.Error = "running", err.Error()
		return http.StatusConflict, out, nil
	case errors.As(err, &blocked):
		out.Status, out.Error, out.Blocked = "blocked", err.Error(), blocked.Reason
		if res == nil {
			res, _ = s.b.Blocked(name)
		}
		status = http.StatusConflict
	case errors.Is(err, ErrUnknownConnector):
		out.Status, out.Error = "failed", err.Error()
		status = http.StatusNotFound
	case err != nil:
		// The upstream failed (unreachable, refused the bind, cut a
		// listing short...): nothing was changed.
		out.Status, out.Error = "failed", err.Error()
		status = http.StatusBadGateway
	case o.DryRun:
		out.Status = "dry_run"
	default:
		out.Status = "ok"
	}
	out.Result = toResultJSON(res)
	return status, out, res
}

func (s *server) apiSync(w http.ResponseWriter, r *http.Request) {
	st, ok := s.connector(w, r)
	if !ok {
		return
	}
	var so syncOptions
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&so); err != nil {
			writeError(w, http.StatusBadRequest, "body must be JSON like {\"dry_run\":true,\"mode\":\"full\",\"force\":false}: "+err.Error())
			return
		}
	}
	o, err := so.toDirsync("api")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	status, out, _ := s.runSync(r, st.Name, o)
	writeJSON(w, status, out)
}

func (s *server) apiTest(w http.ResponseWriter, r *http.Request) {
	st, ok := s.connector(w, r)
	if !ok {
		return
	}
	rep, err := s.b.TestConnection(r.Context(), st.Name)
	if err != nil {
		writeError(w, statusOf(err), "test connection: "+err.Error())
		return
	}
	out := *rep
	out.Steps = nonNil(out.Steps) // [] rather than null, as always
	writeJSON(w, http.StatusOK, out)
}

const (
	defaultRuns = 20
	maxRuns     = 1000
)

// intParam reads a non-negative integer query parameter.
func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, errors.New(name + " must be a non-negative integer")
	}
	return n, nil
}

func (s *server) apiRuns(w http.ResponseWriter, r *http.Request) {
	st, ok := s.connector(w, r)
	if !ok {
		return
	}
	limit, err := intParam(r, "limit", defaultRuns)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if limit == 0 {
		limit = defaultRuns
	}
	runs, err := s.b.Runs(r.Context(), st.Name, min(limit, maxRuns))
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"connector": st.Name, "runs": nonNil(runs)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (s *server) apiBlocked(w http.ResponseWriter, r *http.Request) {
	st, ok := s.connector(w, r)
	if !ok {
		return
	}
	res, pending := s.b.Blocked(st.Name)
	if !pending || res == nil {
		writeError(w, http.StatusNotFound, "no blocked plan is pending for "+st.Name)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"connector": st.Name, "blocked": res.Blocked, "result": toResultJSON(res)})
}

// applyOptions re-runs a blocked plan's run with Force, approving only the
// deletions the admin reviewed.
func applyOptions(pending *dirsync.Result, trigger string) dirsync.Options {
	approved := make([]string, 0, len(pending.Plan.Deletes))
	for _, d := range pending.Plan.Deletes {
		approved = append(approved, d.ID)
	}
	return dirsync.Options{Mode: pending.Mode, Force: true, Approved: approved, Trigger: trigger}
}

func (s *server) apiApply(w http.ResponseWriter, r *http.Request) {
	st, ok := s.connector(w, r)
	if !ok {
		return
	}
	pending, ok := s.b.Blocked(st.Name)
	if !ok || pending == nil {
		writeError(w, http.StatusNotFound, "no blocked plan is pending for "+st.Name+"; run a sync first")
		return
	}
	status, out, _ := s.runSync(r, st.Name, applyOptions(pending, "api"))
	writeJSON(w, status, out)
}

func (s *server) apiLookup(w http.ResponseWriter, r *http.Request) {
	email := strings.TrimSpace(r.URL.Query().Get("email"))
	if email == "" {
		writeError(w, http.StatusBadRequest, "give the address to look up: ?email=user@example.com")
		return
	}
	res, err := s.lookup(r.Context(), email)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	status := http.StatusOK
	if len(res.Accounts) == 0 {
		status = http.StatusNotFound
	}
	writeJSON(w, status, res)
}

func (s *server) apiEntries(w http.ResponseWriter, r *http.Request) {
	q, err := parseBrowse(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.browse(r.Context(), q)
	if err != nil {
		writeError(w, statusOf(err), err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func parseBrowse(r *http.Request) (browseQuery, error) {
	qv := r.URL.Query()
	kind, err := parseKind(qv.Get("kind"))
	if err != nil {
		return browseQuery{}, err
	}
	limit, err := intParam(r, "limit", defaultBrowseLimit)
	if err != nil {
		return browseQuery{}, err
	}
	offset, err := intParam(r, "offset", 0)
	if err != nil {
		return browseQuery{}, err
	}
	return browseQuery{Connector: qv.Get("connector"), Kind: kind, Q: qv.Get("q"), Limit: limit, Offset: offset}, nil
}
