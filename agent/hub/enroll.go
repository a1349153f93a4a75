package hub

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/state"
)

// EnrollRequest is the body of POST /agent/v1/enroll.
type EnrollRequest struct {
	Token   string `json:"token"`
	CSR     string `json:"csr"` // PEM, the agent's own ECDSA P-256 key
	Name    string `json:"name"`
	Version string `json:"version"`
	// Connector, when set, is the connector the agent is configured for:
	// a token for another one is refused without being spent.
	Connector string `json:"connector,omitempty"`
}

// EnrollResponse answers a successful enrollment.
type EnrollResponse struct {
	Certificate string `json:"certificate"` // PEM
	CA          string `json:"ca"`          // PEM
	AgentID     string `json:"agent_id"`
	Connector   string `json:"connector"`
}

// Enrollment error codes, in {"error": code, "message": ...} bodies.
const (
	CodeTokenUnknown   = "token_unknown"
	CodeTokenUsed      = "token_used"
	CodeTokenExpired   = "token_expired"
	CodeTokenConnector = "token_connector"
	CodeBadCSR         = "bad_csr"
	CodeBadRequest     = "bad_request"
	CodeForbidden      = "forbidden"
	CodeInternal       = "internal"
	CodeBusy           = "busy"
)

// ErrorBody is the body of every error answer of the agent listener.
type ErrorBody struct {
	Error   string `json:"error"`
	Message string `json:"message,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(ErrorBody{Error: code, Message: msg})
}

// maxEnrollBody bounds an enrollment request: a CSR is well under 2 KiB.
const maxEnrollBody = 64 << 10

// enroll issues an agent its certificate for a valid token. The CSR is
// checked and signed before the token is spent, so a bad CSR leaves the
// token usable; the token is spent, and the agent stored, in one atomic
// step of the store, so two agents racing with one token cannot both
// enroll (the loser's certificate is never pinned).
func (h *Hub) enroll(w http.ResponseWriter, r *http.Request) {
	var req EnrollRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEnrollBody)).Decode(&req); err != nil || req.Token == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "a JSON body with token, csr, name and version is needed")
		return
	}
	ctx, now := r.Context(), h.cfg.Now()
	hash := HashToken(req.Token)
	tok, err := h.store.EnrollToken(ctx, hash, now)
	if err != nil {
		h.enrollFailed(w, r, err)
		return
	}
	if req.Connector != "" && req.Connector != tok.Connector {
		h.enrollFailed(w, r, state.ErrTokenConnector)
		return
	}
	id := "ag-" + strings.ToLower(rand.Text()[:16])
	cert, certPEM, err := h.cfg.CA.SignAgent([]byte(req.CSR), pki.Agent{ID: id, Connector: tok.Connector}, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadCSR, err.Error())
		return
	}
	a := state.Agent{ID: id, Connector: tok.Connector, Name: req.Name, Fingerprint: pki.Fingerprint(cert),
		Serial: cert.SerialNumber.Text(16), Enrolled: now, CertExpires: cert.NotAfter}
	if err := h.store.RedeemEnrollToken(ctx, hash, a, now); err != nil {
		h.enrollFailed(w, r, err)
		return
	}
	h.log.Info("agent enrolled", slog.String("agent", id), slog.String("connector", a.Connector),
		slog.String("name", req.Name), slog.String("version", req.Version), slog.String("address", r.RemoteAddr))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(EnrollResponse{Certificate: string(certPEM), CA: string(h.cfg.CA.PEM), AgentID: id, Connector: a.Connector})
}

func (h *Hub) enrollFailed(w http.ResponseWriter, r *http.Request, err error) {
	codes := []struct {
		err  error
		code string
	}{
		{state.ErrTokenUnknown, CodeTokenUnknown},
		{state.ErrTokenUsed, CodeTokenUsed},
		{state.ErrTokenExpired, CodeTokenExpired},
		{state.ErrTokenConnector, CodeTokenConnector},
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			h.log.Warn("agent enrollment refused", slog.String("reason", c.code), slog.String("address", r.RemoteAddr))
			writeError(w, http.StatusForbidden, c.code, c.err.Error())
			return
		}
	}
	h.log.Error("agent enrollment", slog.Any("err", err))
	writeError(w, http.StatusInternalServerError, CodeInternal, "enrollment failed; see the hub's log")
}

// authenticate returns the enrolled, unrevoked agent whose certificate
// the request presents, or answers the request with 401 or 403 and
// returns false.
func (h *Hub) authenticate(w http.ResponseWriter, r *http.Request) (state.Agent, bool) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		writeError(w, http.StatusUnauthorized, CodeForbidden, "an agent certificate is required")
		return state.Agent{}, false
	}
	cert := r.TLS.PeerCertificates[0]
	id, err := h.cfg.CA.VerifyAgent(cert, h.cfg.Now())
	if err == nil {
		var a state.Agent
		a, err = h.store.Agent(r.Context(), id)
		switch {
		case errors.Is(err, state.ErrNotFound):
			err = fmt.Errorf("agent %s is not enrolled", id)
		case err != nil:
			h.log.Error("agent hub: reading an agent", slog.Any("err", err))
			writeError(w, http.StatusServiceUnavailable, CodeInternal, "the agent store cannot be read")
			return state.Agent{}, false
		case !a.Revoked.IsZero():
			err = fmt.Errorf("agent %s is revoked", id)
		case !a.Pins(pki.Fingerprint(cert)):
			err = fmt.Errorf("agent %s enrolled with another certificate", id)
		default:
			return a, true
		}
	}
	h.log.Warn("agent refused", slog.String("address", r.RemoteAddr), slog.Any("err", err))
	writeError(w, http.StatusForbidden, CodeForbidden, err.Error())
	return state.Agent{}, false
}

// Handler serves the agent endpoints.
func (h *Hub) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /agent/v1/enroll", h.enroll)
	mux.HandleFunc("POST /agent/v1/renew", h.renew)
	mux.HandleFunc("POST /agent/v1/connect", h.connect)
	mux.HandleFunc("POST /agent/v1/reply/{id}", h.reply)
	mux.HandleFunc("GET /agent/v1/known/{id}", h.known)
	return mux
}
