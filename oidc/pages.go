package oidc

import (
	"html/template"
	"net/http"
)

// The pages are server-rendered, work without JavaScript, and are sent
// with headers that forbid framing (clickjacking) and caching.
var pages = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{if .Title}}{{.Title}}{{else}}Sign in{{end}} – dirgate</title>
<style>
body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0;color:#1d2430}
main{max-width:24rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin:0 0 .3rem}
p.app{margin:0 0 1.5rem;color:#4a5568}
label{display:block;font-weight:600;margin:1rem 0 .3rem}
input[type=email],input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;font-size:1rem;border:1px solid #8a94a6;border-radius:4px}
input:focus,button:focus{outline:3px solid #2b6cb0;outline-offset:1px}
button{margin-top:1.5rem;width:100%;padding:.7rem;font-size:1rem;background:#2b6cb0;color:#fff;border:0;border-radius:4px;cursor:pointer}
button.upstream{background:#fff;color:#1d2430;border:1px solid #8a94a6;margin-top:.8rem}
.error{background:#fde8e8;border:1px solid #c53030;color:#822727;padding:.7rem;border-radius:4px;margin-bottom:1rem}
</style>
</head>
<body>
<main>
{{if .Login}}
<h1>Sign in</h1>
<p class="app">to continue to <strong>{{.App}}</strong></p>
<div id="error" role="alert" aria-live="assertive">{{if .Error}}<p class="error">{{.Error}}</p>{{end}}</div>
<form method="post" action="{{.Action}}" novalidate>
<input type="hidden" name="request" value="{{.Request}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label for="email">Email address</label>
<input id="email" name="email" type="text" inputmode="email" autocomplete="username" required autofocus value="{{.Email}}"{{if .Error}} aria-describedby="error" aria-invalid="true"{{end}}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{{range .Upstreams}}
<form method="post" action="{{$.UpstreamAction}}">
<input type="hidden" name="request" value="{{$.Request}}">
<input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="hidden" name="upstream" value="{{.Name}}">
<button type="submit" class="upstream">Sign in with {{.Label}}</button>
</form>
{{end}}
{{else}}
<h1>{{.Title}}</h1>
<p role="status">{{.Message}}</p>
{{with .Discovery}}<p><a href="{{.}}">OpenID Provider configuration</a> (discovery document for applications)</p>{{end}}
{{end}}
</main>
</body>
</html>
`))

type pageData struct {
	Login                 bool
	Title, Message, Error string
	App, Action           string
	Request, CSRF, Email  string
	Discovery             string // a link to the discovery document
	Upstreams             []upstreamButton
	UpstreamAction        string
}

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
}

func (p *Provider) loginPage(w http.ResponseWriter, status int, id string, req *authRequest, email, msg string) {
	pageHeaders(w)
	w.WriteHeader(status)
	app := req.ClientName
	if app == "" {
		app = req.ClientID
	}
	_ = pages.Execute(w, pageData{Login: true, App: app, Action: p.path + "/login", Request: id, CSRF: req.CSRF, Email: email, Error: msg,
		Upstreams: p.upstreamButtons(), UpstreamAction: p.path + "/upstream"})
}

func (p *Provider) errorPage(w http.ResponseWriter, status int, title, msg string) {
	pageHeaders(w)
	w.WriteHeader(status)
	_ = pages.Execute(w, pageData{Title: title, Message: msg})
}

// home is the issuer's root: a person who opens the issuer URL learns what
// it is and where applications find its configuration.
func (p *Provider) home(w http.ResponseWriter, _ *http.Request) {
	pageHeaders(w)
	w.WriteHeader(http.StatusOK)
	_ = pages.Execute(w, pageData{Title: "dirgate sign-in service",
		Message:   "This is an OpenID Connect provider. Applications send you here to sign in with your email address and directory password.",
		Discovery: p.endpoint(".well-known/openid-configuration")})
}
