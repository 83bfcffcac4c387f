package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	tactv1 "github.com/tact-nba/tact/proto/tact/v1"
)

// The operator console: server-rendered pages on the HTTP port at
// /console/, for supervisors (the centre's load and what Tact holds back),
// team leads (why was this client not offered anything?) and analysts
// (experiments, models). No JavaScript framework, no CDN: html/template,
// charts drawn as SVG on the server, and one small script of ours that
// refreshes marked fragments. Everything is embedded in the binary.
//
// Security. With authentication on, the console asks once for a bearer
// token (an API key or a JWT, the same as the API's) and keeps it in an
// HttpOnly, SameSite=Strict cookie scoped to /console/ (Secure over TLS):
// no new credential store, and the API's roles apply: pages that show a
// client need admin, the decision tester calls Decide as the user (agent).
// A cookie rather than proxy headers, so that the console works the same
// behind any proxy or none. Every form carries a CSRF token (a double
// submit of a random cookie), every answer a strict Content-Security-Policy
// (scripts and styles from the console only, nothing inline, no framing),
// and client ids travel in POST bodies, never in URLs that reach the
// access log.

//go:embed console
var consoleFiles embed.FS

// consoleRoles are who may open each page when authentication is on.
var consoleRoles = map[string][]string{
	"centre":      {RoleAgent, RoleAdmin},
	"tester":      {RoleAgent},
	"client":      {RoleAdmin},
	"experiments": {RoleAdmin},
	"models":      {RoleAgent, RoleAdmin},
}

// consoleTitles are the pages' titles, by template.
var consoleTitles = map[string]string{
	"centre": "Centre", "tester": "Decision tester", "client": "Client", "experiments": "Experiments",
	"models": "Models", "login": "Log in", "denied": "Not allowed",
}

const (
	sessionCookie = "tact_session"
	csrfCookie    = "tact_csrf"
	consolePath   = "/console/"
	// consoleCSP lets the pages load only the console's own script and
	// style; inline SVG needs nothing more.
	consoleCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

type console struct {
	s      *Server
	svc    *services
	authn  *auth
	ic     grpc.UnaryServerInterceptor
	secure bool
	pages  *template.Template
	logger *slog.Logger
	// refresh is how often the centre's fragments are fetched again.
	refresh time.Duration
	stats   *activityCache
}

func newConsole(s *Server, svc *services, authn *auth, ic grpc.UnaryServerInterceptor) (*console, error) {
	pages, err := template.New("").Funcs(consoleFuncs).ParseFS(consoleFiles, "console/templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("console: templates: %w", err)
	}
	return &console{s: s, svc: svc, authn: authn, ic: ic, secure: s.tls != nil, pages: pages, logger: s.logger,
		refresh: 2 * time.Second, stats: &activityCache{every: 5 * time.Second}}, nil
}

// register mounts the console on mux, and / as a redirect to it.
func (c *console) register(mux *http.ServeMux) {
	static, _ := fs.Sub(consoleFiles, "console/static") // a constant path in the embedded tree
	mux.Handle("GET /console/static/", c.headers(http.StripPrefix("/console/static/", http.FileServerFS(static))))
	mux.Handle("GET /{$}", http.RedirectHandler(consolePath, http.StatusFound))
	mux.Handle("GET /favicon.ico", http.RedirectHandler("/console/static/favicon.svg", http.StatusMovedPermanently))
	mux.Handle("GET /console/login", c.headers(http.HandlerFunc(c.loginPage)))
	mux.Handle("POST /console/login", c.headers(c.form(http.HandlerFunc(c.login))))
	mux.Handle("POST /console/logout", c.headers(c.form(http.HandlerFunc(c.logout))))
	mux.Handle("GET /console/{$}", c.page("centre", c.centre))
	mux.Handle("GET /console/fragments/queues", c.page("centre", c.queuesFragment))
	mux.Handle("GET /console/fragments/activity", c.page("centre", c.activityFragment))
	mux.Handle("GET /console/tester", c.page("tester", c.tester))
	mux.Handle("POST /console/tester", c.page("tester", c.form(http.HandlerFunc(c.tester)).ServeHTTP))
	mux.Handle("GET /console/client", c.page("client", c.client))
	mux.Handle("POST /console/client", c.page("client", c.form(http.HandlerFunc(c.client)).ServeHTTP))
	mux.Handle("GET /console/experiments", c.page("experiments", c.experiments))
	mux.Handle("GET /console/models", c.page("models", c.models))
}

// headers sets what every console answer carries.
func (c *console) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", consoleCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// consoleUser is who is looking: nil principal with authentication off.
type consoleUser struct {
	P    *Principal
	CSRF string
}

type consoleUserKey struct{}

func userOf(r *http.Request) *consoleUser {
	u, _ := r.Context().Value(consoleUserKey{}).(*consoleUser)
	return u
}

// page serves a page (or fragment) to a user allowed to see it: with
// authentication on, a visitor without a valid session is sent to the
// login page, a user without the page's role gets 403.
func (c *console) page(name string, h http.HandlerFunc) http.Handler {
	return c.headers(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := &consoleUser{CSRF: c.csrfToken(w, r)}
		if c.authn.enabled() {
			ck, err := r.Cookie(sessionCookie)
			if err == nil {
				u.P, err = c.authn.authenticate("Bearer " + ck.Value)
			}
			if err != nil {
				if strings.HasPrefix(r.URL.Path, "/console/fragments/") {
					http.Error(w, "log in again", http.StatusUnauthorized)
					return
				}
				http.Redirect(w, r, "/console/login", http.StatusSeeOther)
				return
			}
			if !slices.ContainsFunc(consoleRoles[name], u.P.has) {
				w.WriteHeader(http.StatusForbidden)
				c.render(w, r, "denied", map[string]any{"Page": name, "Roles": consoleRoles[name], "User": u})
				return
			}
		}
		h(w, r.WithContext(context.WithValue(r.Context(), consoleUserKey{}, u)))
	}))
}

// csrfToken returns the browser's CSRF token, setting one when it has none.
func (c *console) csrfToken(w http.ResponseWriter, r *http.Request) string {
	if ck, err := r.Cookie(csrfCookie); err == nil && len(ck.Value) == 32 {
		return ck.Value
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	tok := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: tok, Path: consolePath, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteStrictMode})
	r.AddCookie(&http.Cookie{Name: csrfCookie, Value: tok}) // this request's forms use it too
	return tok
}

// form checks a POST: a small body, parsed, with the CSRF token of the
// browser's cookie.
func (c *console) form(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "form: "+err.Error(), http.StatusBadRequest)
			return
		}
		ck, err := r.Cookie(csrfCookie)
		if err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(r.PostFormValue("csrf"))) != 1 {
			http.Error(w, "the form's CSRF token does not match this browser's: reload the page and submit again", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *console) render(w http.ResponseWriter, r *http.Request, name string, data map[string]any) {
	if data == nil {
		data = map[string]any{}
	}
	if _, ok := data["User"]; !ok {
		data["User"] = userOf(r)
	}
	data["AuthOn"] = c.authn.enabled()
	data["Title"] = consoleTitles[name]
	data["Refresh"] = c.refresh.Milliseconds()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := c.pages.ExecuteTemplate(w, name, data); err != nil {
		c.logger.Error("console: render", "page", name, "err", err)
	}
}

func (c *console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !c.authn.enabled() {
		http.Redirect(w, r, consolePath, http.StatusSeeOther)
		return
	}
	c.render(w, r, "login", map[string]any{"User": &consoleUser{CSRF: c.csrfToken(w, r)}})
}

func (c *console) login(w http.ResponseWriter, r *http.Request) {
	tok := strings.TrimSpace(r.PostFormValue("token"))
	if _, err := c.authn.authenticate("Bearer " + tok); err != nil || tok == "" {
		w.WriteHeader(http.StatusUnauthorized)
		c.render(w, r, "login", map[string]any{"User": &consoleUser{CSRF: c.csrfToken(w, r)}, "Error": "That token is not valid here."})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: tok, Path: consolePath, HttpOnly: true, Secure: c.secure,
		SameSite: http.SameSiteStrictMode, MaxAge: int((12 * time.Hour).Seconds())})
	http.Redirect(w, r, consolePath, http.StatusSeeOther)
}

func (c *console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: consolePath, HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// call runs one of the API's methods in-process as the console's user,
// through the same interceptors as a REST call (authorization, validation,
// the access log).
func call[Req, Resp any](c *console, r *http.Request, method string, req Req, h func(context.Context, Req) (Resp, error)) (Resp, error) {
	u := userOf(r)
	rc := &restCaller{peer: hostOf(r.RemoteAddr)}
	if u != nil && u.P != nil {
		rc.p = u.P
	} else if c.authn.enabled() {
		rc.err = errors.New("not logged in")
	}
	ctx := context.WithValue(r.Context(), restCallerKey{}, rc)
	out, err := c.ic(ctx, req, &grpc.UnaryServerInfo{FullMethod: method}, func(ctx context.Context, req any) (any, error) {
		return h(ctx, req.(Req))
	})
	if err != nil {
		var zero Resp
		return zero, err
	}
	return out.(Resp), nil
}

// errorText is what a page says of a failed call.
func errorText(err error) string {
	st := status.Convert(err)
	return st.Code().String() + ": " + st.Message()
}

var _ = tactv1.DecisionService_Decide_FullMethodName
