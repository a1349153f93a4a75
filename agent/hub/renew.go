package hub

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/dirgate/dirgate/agent/pki"
	"github.com/dirgate/dirgate/state"
)

// RenewRequest is the body of POST /agent/v1/renew: a CSR for a key the
// agent generated for its next certificate.
type RenewRequest struct {
	CSR string `json:"csr"` // PEM, ECDSA P-256
}

// RenewResponse answers a renewal: the agent's new certificate, for the
// same agent ID and connector, and the hub's CA.
type RenewResponse struct {
	Certificate string `json:"certificate"` // PEM
	CA          string `json:"ca"`          // PEM
}

// renew issues an enrolled agent, authenticated by its current
// certificate, a certificate for a new key of its own. The renewed
// certificate is pinned in place of the one presented, which still
// authenticates until it expires (the agent's connections made before the
// renewal present it) but cannot renew again.
func (h *Hub) renew(w http.ResponseWriter, r *http.Request) {
	a, ok := h.authenticate(w, r)
	if !ok {
		return
	}
	var req RenewRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxEnrollBody)).Decode(&req); err != nil || req.CSR == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "a JSON body with csr is needed")
		return
	}
	now := h.cfg.Now()
	cert, certPEM, err := h.cfg.CA.SignAgent([]byte(req.CSR), pki.Agent{ID: a.ID, Connector: a.Connector}, now)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadCSR, err.Error())
		return
	}
	presented := pki.Fingerprint(r.TLS.PeerCertificates[0])
	renewed := state.Agent{Fingerprint: pki.Fingerprint(cert), Serial: cert.SerialNumber.Text(16), CertExpires: cert.NotAfter}
	switch err := h.store.RenewAgentCert(r.Context(), a.ID, presented, renewed); {
	case errors.Is(err, state.ErrCertSuperseded), errors.Is(err, state.ErrNotFound):
		// A replaced certificate (a copy of an old key, or an agent that
		// lost the renewed one), or revoked meanwhile.
		h.log.Warn("agent certificate renewal refused: not the agent's current certificate", slog.String("agent", a.ID),
			slog.String("address", r.RemoteAddr), slog.Any("err", err))
		writeError(w, http.StatusForbidden, CodeForbidden, "this certificate was replaced by a renewal (or the agent was revoked) "+
			"and cannot renew; if this agent lost its renewed certificate, enroll it again")
		return
	case err != nil:
		h.log.Error("agent certificate renewal", slog.String("agent", a.ID), slog.Any("err", err))
		writeError(w, http.StatusServiceUnavailable, CodeInternal, "the agent store cannot be written")
		return
	}
	h.log.Info("agent certificate renewed", slog.String("agent", a.ID), slog.String("connector", a.Connector),
		slog.Time("expiry", cert.NotAfter), slog.String("address", r.RemoteAddr))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(RenewResponse{Certificate: string(certPEM), CA: string(h.cfg.CA.PEM)})
}
