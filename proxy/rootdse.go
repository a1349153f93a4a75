package proxy

import (
	"github.com/jimlambrt/gldap"

	"github.com/dirgate/dirgate/cache"
	"github.com/dirgate/dirgate/filter"
)

// Version is reported as the root DSE's vendorVersion; set by the binary.
var Version = "dev"

// rootDSE answers the base search on the empty DN (RFC 4512 5.1): what the
// server supports, readable before any bind.
func (l *listener) rootDSE(w *gldap.ResponseWriter, r *gldap.Request, m *gldap.SearchMessage, done *gldap.SearchResponseDone) {
	exts := []string{string(gldap.ExtendedOperationWhoAmI)}
	if l.s.tls != nil && l.s.settings().cfg.StartTLS && !l.ldaps {
		exts = append(exts, string(gldap.ExtendedOperationStartTLS))
	}
	attrs := []cache.Attr{
		{Name: "objectClass", Values: []string{"top", "dirgateRootDSE"}},
		{Name: "namingContexts", Values: l.s.settings().roots},
		{Name: "supportedLDAPVersion", Values: []string{"3"}},
		{Name: "supportedControl", Values: []string{gldap.ControlTypePaging}},
		{Name: "supportedExtension", Values: exts},
		{Name: "supportedFeatures", Values: []string{"1.3.6.1.4.1.4203.1.5.1"}}, // all operational attributes ("+")
		{Name: "vendorName", Values: []string{"dirgate"}},
		{Name: "vendorVersion", Values: []string{Version}},
	}
	f, err := filter.Parse(m.Filter, filter.Limits{})
	if err != nil {
		done.SetResultCode(gldap.ResultUnwillingToPerform)
		done.SetDiagnosticMessage("filter refused: " + err.Error())
		l.write(w, done)
		return
	}
	req, serr := parseAttrRequest(m.Attributes, maxAttrDescs)
	if serr != nil {
		done.SetResultCode(serr.code)
		done.SetDiagnosticMessage(serr.msg)
		l.write(w, done)
		return
	}
	e := &cache.Entry{Attrs: attrs}
	if f.Match(e) {
		out := r.NewSearchResponseEntry("")
		for _, a := range attrs {
			// Everything but objectClass is operational on the root DSE.
			if req.named(a.Name) || req.ops || (req.all && a.Name == "objectClass") {
				if len(a.Values) > 0 {
					out.AddAttribute(a.Name, a.Values)
				}
			}
		}
		l.write(w, out)
	}
	l.write(w, done)
}
