// Package openbis is a stand-in for an openBIS server that keeps the
// contracts provision's deployments rely on: the V3 JSON-RPC API's session
// calls (login, isSessionActive, getSessionInformation, logout) at the real
// path, and the ELN's URL layout, serving the InstanceProfile.js that
// provision patches fresh from disk and a page that runs the ELN's Jupyter
// flow (eln-lims html/js/util/JupyterUtil.js) against it.
//
// No openBIS is available to the tests; cmd/openbis-standin wraps this
// package as a static binary for the throwaway test servers.
package openbis

import (
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// URL layout of the real openBIS.
const (
	// ELNPath is the ELN web app (eln-lims's html directory).
	ELNPath = "/openbis/webapp/eln-lims/"
	// ProfilePath serves html/etc/InstanceProfile.js.
	ProfilePath = ELNPath + "etc/InstanceProfile.js"
	// JQueryPath serves the jQuery the page loads.
	JQueryPath = ELNPath + "lib/jquery/js/jquery.min.js"
	// AppPath is the openBIS application server's root page.
	AppPath = "/openbis/openbis/"
)

//go:embed eln
var elnFiles embed.FS

// Config configures a Server.
type Config struct {
	// Users maps user names to passwords (see ParseUsers).
	Users map[string]string
	// ELNRoot is the ELN's html directory on disk, the one holding
	// etc/InstanceProfile.js; files under it are served below ELNPath.
	ELNRoot string
	// JQuery is the path of jquery.min.js on disk (Debian's libjs-jquery
	// puts it at /usr/share/javascript/jquery/jquery.min.js).
	JQuery string
	// Now and Rand default to time.Now and crypto/rand; tests fix them.
	Now  func() time.Time
	Rand io.Reader
}

// Server is the stand-in's http.Handler.
type Server struct {
	users    map[string]string
	elnRoot  string
	jquery   string
	sessions *sessions
	embedded fs.FS
	mux      *http.ServeMux
}

// NewServer checks cfg and returns the stand-in's handler.
func NewServer(cfg Config) (*Server, error) {
	if len(cfg.Users) == 0 {
		return nil, errors.New("openbis stand-in: no users")
	}
	if cfg.ELNRoot == "" {
		return nil, errors.New("openbis stand-in: no ELN root")
	}
	if fi, err := os.Stat(cfg.ELNRoot); err != nil {
		return nil, fmt.Errorf("openbis stand-in: ELN root: %w", err)
	} else if !fi.IsDir() {
		return nil, fmt.Errorf("openbis stand-in: ELN root %s is not a directory", cfg.ELNRoot)
	}
	if cfg.JQuery == "" {
		return nil, errors.New("openbis stand-in: no jQuery file")
	}
	if _, err := os.Stat(cfg.JQuery); err != nil {
		return nil, fmt.Errorf("openbis stand-in: jQuery: %w", err)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	sub, err := fs.Sub(elnFiles, "eln")
	if err != nil {
		return nil, fmt.Errorf("openbis stand-in: embedded page: %w", err)
	}
	users := make(map[string]string, len(cfg.Users))
	for u, p := range cfg.Users {
		users[u] = p
	}
	srv := &Server{
		users:    users,
		elnRoot:  cfg.ELNRoot,
		jquery:   cfg.JQuery,
		sessions: &sessions{byTok: make(map[string]string), now: cfg.Now, random: cfg.Rand},
		embedded: sub,
		mux:      http.NewServeMux(),
	}
	srv.mux.HandleFunc(APIPath, srv.serveAPI)
	srv.mux.HandleFunc(AppPath, srv.serveApp)
	srv.mux.HandleFunc(ELNPath, srv.serveELN)
	return srv, nil
}

func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	srv.mux.ServeHTTP(w, r)
}

// serveApp answers the application server's root with a minimal page, so
// a probe of OPENBIS_URL/openbis/openbis/ sees a server.
func (srv *Server) serveApp(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != AppPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, "<!DOCTYPE html>\n<html><head><title>openBIS</title></head>"+
		"<body><p>openBIS stand-in. API: <code>"+APIPath+"</code>; ELN: <a href=\""+ELNPath+"\">"+ELNPath+"</a></p></body></html>\n")
}

// serveELN serves the ELN's html directory: the stand-in page and its
// scripts from the embedded files, jQuery from its file, and everything
// else (InstanceProfile.js first of all) from ELNRoot.
func (srv *Server) serveELN(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, ELNPath)
	if rel == "" {
		rel = "index.html"
	}
	if rel != path.Clean(rel) || !fs.ValidPath(rel) {
		http.NotFound(w, r)
		return
	}
	// The files provision edits, or a test swaps, must never come from a
	// cache: every request reads the disk again.
	w.Header().Set("Cache-Control", "no-store")
	if r.URL.Path == JQueryPath {
		serveDiskFile(w, r, srv.jquery)
		return
	}
	if fi, err := fs.Stat(srv.embedded, rel); err == nil && !fi.IsDir() {
		http.ServeFileFS(w, r, srv.embedded, rel)
		return
	}
	serveDiskFile(w, r, filepath.Join(srv.elnRoot, filepath.FromSlash(rel)))
}

// serveDiskFile serves one regular file, without directory listings or
// index.html redirects, which the ELN has no use for.
func serveDiskFile(w http.ResponseWriter, r *http.Request, name string) {
	f, err := os.Open(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		http.NotFound(w, r)
		return
	}
	if strings.HasSuffix(name, ".js") {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	}
	// A zero time disables If-Modified-Since answers: a profile patched
	// twice within a second keeps its mtime.
	http.ServeContent(w, r, fi.Name(), time.Time{}, f)
}
