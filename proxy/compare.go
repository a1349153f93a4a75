package proxy

import (
	"context"
	"errors"

	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/filter"
)

// compare answers the Compare operation from the cache with the same
// matching rules as search filters.
func (l *listener) compare(w *gldap.ResponseWriter, r *gldap.Request) {
	resp := r.NewResponse(gldap.WithApplicationCode(gldap.ApplicationCompareResponse), gldap.WithResponseCode(gldap.ResultCompareFalse))
	defer l.answer(w, opLabel(r), resp)
	m, err := r.GetCompareMessage()
	if err != nil {
		resp.SetResultCode(gldap.ResultProtocolError)
		resp.SetDiagnosticMessage("malformed compare request")
		return
	}
	if kind, _ := l.session(r.ConnectionID()).get(); kind == bindAnonymous && !l.s.settings().cfg.AllowAnonymous {
		resp.SetResultCode(gldap.ResultInsufficientAccessRights)
		resp.SetDiagnosticMessage("bind before comparing")
		return
	}
	f, err := filter.Parse("("+m.Attribute+"="+escapeAssertion(m.AssertionValue)+")", filter.Limits{})
	if err != nil {
		resp.SetResultCode(gldap.ResultProtocolError)
		resp.SetDiagnosticMessage("invalid attribute description")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), maxSearchTime)
	defer cancel()
	err = l.s.store.View(ctx, func(v *cache.View) error {
		e, err := v.ByDN(m.DN)
		if err != nil {
			return err
		}
		ev := &entryView{e: e, v: v}
		switch {
		// The filter's name for the attribute: canonical, so that an OID
		// or an alias finds the stored attribute.
		case len(ev.Values(f.Attributes()[0])) == 0:
			resp.SetResultCode(gldap.ResultNoSuchAttribute)
		case f.Match(ev):
			resp.SetResultCode(gldap.ResultCompareTrue)
		}
		return ev.err
	})
	switch {
	case errors.Is(err, cache.ErrNotFound):
		resp.SetResultCode(gldap.ResultNoSuchObject)
	case err != nil:
		resp.SetResultCode(gldap.ResultOperationsError)
	}
}
