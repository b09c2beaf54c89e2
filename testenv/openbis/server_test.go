package openbis

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const testProfile = `function InstanceProfile(serverFacade) {
	this.init(serverFacade);
}

$.extend(InstanceProfile.prototype, StandardProfile.prototype, {
	init: function(serverFacade){
		StandardProfile.prototype.init.call(this, serverFacade);

// BEGIN ANSIBLE MANAGED BLOCK (jupyter)
		this.jupyterIntegrationServerEndpoint = "https://jh.example:8002";
		this.jupyterEndpoint = "https://jh.example/";
// END ANSIBLE MANAGED BLOCK (jupyter)
		this.hideSectionsByDefault = true;
}
})
`

// fixture is a stand-in on a loopback TLS server with an ELN root and a
// fake jQuery in temporary directories.
type fixture struct {
	srv     *httptest.Server
	elnRoot string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "html")
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "InstanceProfile.js"), []byte(testProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	jq := filepath.Join(dir, "jquery.min.js")
	if err := os.WriteFile(jq, []byte("/* fake jQuery */"), 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 12, 1, 12, 0, 0, 123e6, time.UTC)
	h, err := NewServer(Config{
		Users:   map[string]string{"alice": "secret", "bob": "secret2"},
		ELNRoot: root,
		JQuery:  jq,
		Now:     func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(h) // binds 127.0.0.1
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, elnRoot: root}
}

// rpc posts a JSON-RPC body and returns the HTTP status and decoded answer.
func (f *fixture) rpc(t *testing.T, body string) (int, map[string]json.RawMessage) {
	t.Helper()
	// jQuery's default type, as openbis.js sends it.
	resp, err := f.srv.Client().Post(f.srv.URL+APIPath, "application/x-www-form-urlencoded; charset=UTF-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var out map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("decode answer: %v", err)
	}
	return resp.StatusCode, out
}

func call(method string, params ...any) string {
	b, _ := json.Marshal(map[string]any{"id": "1", "jsonrpc": "2.0", "method": method, "params": params})
	return string(b)
}

func (f *fixture) login(t *testing.T, user, password string) string {
	t.Helper()
	_, out := f.rpc(t, call("login", user, password))
	var tok string
	if err := json.Unmarshal(out["result"], &tok); err != nil || tok == "" {
		t.Fatalf("login %s: result %s", user, out["result"])
	}
	return tok
}

var tokenShape = regexp.MustCompile(`^alice-251201120000123x[0-9A-F]{32}$`)

func TestLogin(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name           string
		user, password string
		wantToken      bool
	}{
		{"good password", "alice", "secret", true},
		{"bad password", "alice", "secret2", false},
		{"unknown user", "carol", "secret", false},
		{"empty password", "alice", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := f.rpc(t, call("login", tt.user, tt.password))
			if status != http.StatusOK {
				t.Errorf("status %d", status)
			}
			if string(out["jsonrpc"]) != `"2.0"` || string(out["id"]) != `"1"` {
				t.Errorf("envelope %s %s", out["jsonrpc"], out["id"])
			}
			if _, ok := out["error"]; ok {
				t.Errorf("error %s", out["error"])
			}
			raw, ok := out["result"]
			if !ok {
				t.Fatal("no result member")
			}
			if !tt.wantToken {
				if string(raw) != "null" {
					t.Errorf("result %s, want null", raw)
				}
				return
			}
			var tok string
			if err := json.Unmarshal(raw, &tok); err != nil || !tokenShape.MatchString(tok) {
				t.Errorf("token %s does not look like openBIS's", raw)
			}
		})
	}
}

func TestSessionCalls(t *testing.T) {
	f := newFixture(t)
	alice := f.login(t, "alice", "secret")
	gone := f.login(t, "bob", "secret2")
	if _, out := f.rpc(t, call("logout", gone)); string(out["result"]) != "null" {
		t.Fatalf("logout result %s", out["result"])
	}
	tests := []struct {
		name, body string
		want       string // the result, compacted JSON
	}{
		{"active", call("isSessionActive", alice), `true`},
		{"logged out", call("isSessionActive", gone), `false`},
		{"unknown", call("isSessionActive", "alice-251201120000000x00"), `false`},
		{"information", call("getSessionInformation", alice),
			`{"@type":"as.dto.session.SessionInformation","sessionToken":"` + alice + `","userName":"alice","homeGroupCode":null,"personalAccessTokenSession":false,"person":null,"creatorPerson":null}`},
		{"information logged out", call("getSessionInformation", gone), `null`},
		{"logout unknown", call("logout", "nobody-1x2"), `null`},
		{"public information", call("getServerPublicInformation"), `{"authentication-service":"stand-in users file"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := f.rpc(t, tt.body)
			if status != http.StatusOK {
				t.Errorf("status %d", status)
			}
			var got bytes.Buffer
			if err := json.Compact(&got, out["result"]); err != nil {
				t.Fatalf("result %s: %v", out["result"], err)
			}
			if got.String() != tt.want {
				t.Errorf("result\n got %s\nwant %s", got.String(), tt.want)
			}
		})
	}
}

func TestRPCErrors(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, body string
		status     int
		code       int
		id         string
	}{
		{"not JSON", `{"id":`, 500, codeParseError, "null"},
		{"no method", `{"id":"7","jsonrpc":"2.0","params":[]}`, 400, codeInvalidRequest, `"7"`},
		{"unknown method", call("searchSamples", "t"), 404, codeMethodNotFound, `"1"`},
		{"login one parameter", call("login", "alice"), 500, codeInvalidParams, `"1"`},
		{"login number", call("login", "alice", 1), 500, codeInvalidParams, `"1"`},
		{"isSessionActive none", call("isSessionActive"), 500, codeInvalidParams, `"1"`},
		{"isSessionActive null", call("isSessionActive", nil), 500, codeInvalidParams, `"1"`},
		{"getSessionInformation object", call("getSessionInformation", map[string]string{"a": "b"}), 500, codeInvalidParams, `"1"`},
		{"numeric id kept", `{"id":3,"jsonrpc":"2.0","method":"nope","params":[]}`, 404, codeMethodNotFound, `3`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, out := f.rpc(t, tt.body)
			if status != tt.status {
				t.Errorf("status %d, want %d", status, tt.status)
			}
			if string(out["id"]) != tt.id {
				t.Errorf("id %s, want %s", out["id"], tt.id)
			}
			if _, ok := out["result"]; ok {
				t.Errorf("error answer has a result: %s", out["result"])
			}
			var e rpcError
			if err := json.Unmarshal(out["error"], &e); err != nil {
				t.Fatalf("error member %s: %v", out["error"], err)
			}
			if e.Code != tt.code || e.Message == "" || e.Data.ExceptionTypeName == "" {
				t.Errorf("error %+v, want code %d with message and type", e, tt.code)
			}
		})
	}
}

func TestAPIMethodNotAllowed(t *testing.T) {
	f := newFixture(t)
	resp, err := f.srv.Client().Get(f.srv.URL + APIPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d", APIPath, resp.StatusCode)
	}
}

func (f *fixture) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	resp, err := f.srv.Client().Get(f.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestProfileServedFresh(t *testing.T) {
	f := newFixture(t)
	profile := filepath.Join(f.elnRoot, "etc", "InstanceProfile.js")
	for i, content := range []string{testProfile, "// patched once\n", "// patched twice\n"} {
		if err := os.WriteFile(profile, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		resp, body := f.get(t, ProfilePath)
		if resp.StatusCode != http.StatusOK || body != content {
			t.Errorf("round %d: %d %q, want %q", i, resp.StatusCode, body, content)
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/javascript") {
			t.Errorf("Content-Type %q", ct)
		}
	}
	if err := os.Remove(profile); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.get(t, ProfilePath); resp.StatusCode != http.StatusNotFound {
		t.Errorf("removed profile: %d", resp.StatusCode)
	}
}

func TestELNFiles(t *testing.T) {
	f := newFixture(t)
	if err := os.WriteFile(filepath.Join(f.elnRoot, "extra.txt"), []byte("from disk"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path     string
		status   int
		contains string
	}{
		{ELNPath, 200, `id="create-notebook"`},
		{"/openbis/webapp/eln-lims", 307, ""},
		{JQueryPath, 200, "fake jQuery"},
		{ELNPath + "js/config/StandardProfile.js", 200, "function StandardProfile"},
		{ELNPath + "js/util/JupyterUtil.js", 200, "createJupyterNotebookAndOpen"},
		{ELNPath + "js/standin/main.js", 200, "ELNStandIn"},
		{ELNPath + "extra.txt", 200, "from disk"},
		{ELNPath + "etc/", 404, ""},
		// ServeMux cleans the path first and redirects to the result.
		{ELNPath + "etc/../../../../etc/passwd", 307, ""},
		{ELNPath + "missing.js", 404, ""},
		{AppPath, 200, APIPath},
		{AppPath + "other", 404, ""},
		{"/", 404, ""},
	}
	client := f.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := client.Get(f.srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if !strings.Contains(string(b), tt.contains) {
				t.Errorf("body lacks %q", tt.contains)
			}
		})
	}
}

func TestPageScriptOrder(t *testing.T) {
	f := newFixture(t)
	_, page := f.get(t, ELNPath)
	want := []string{
		"lib/jquery/js/jquery.min.js",
		"js/config/StandardProfile.js",
		"etc/InstanceProfile.js",
		"js/util/JupyterUtil.js",
		"js/standin/main.js",
	}
	var got []string
	for _, m := range regexp.MustCompile(`<script src="([^"]+)"`).FindAllStringSubmatch(page, -1) {
		got = append(got, m[1])
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("scripts %q, want %q", got, want)
	}
	// Each relative src must resolve to what the server serves.
	for _, src := range want {
		if resp, _ := f.get(t, ELNPath+src); resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", src, resp.StatusCode)
		}
	}
	for _, id := range []string{"status", "create-notebook", "user", "password", "login", "folder", "filename", "hub-link"} {
		if !strings.Contains(page, `id="`+id+`"`) {
			t.Errorf("page has no element %q", id)
		}
	}
}

func TestNewServerChecks(t *testing.T) {
	dir := t.TempDir()
	jq := filepath.Join(dir, "jq.js")
	os.WriteFile(jq, nil, 0o644)
	users := map[string]string{"a": "b"}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no users", Config{ELNRoot: dir, JQuery: jq}},
		{"no root", Config{Users: users, JQuery: jq}},
		{"missing root", Config{Users: users, ELNRoot: filepath.Join(dir, "nope"), JQuery: jq}},
		{"root is a file", Config{Users: users, ELNRoot: jq, JQuery: jq}},
		{"no jquery", Config{Users: users, ELNRoot: dir}},
		{"missing jquery", Config{Users: users, ELNRoot: dir, JQuery: filepath.Join(dir, "nope.js")}},
	}
	for _, tt := range tests {
		if _, err := NewServer(tt.cfg); err == nil {
			t.Errorf("%s: no error", tt.name)
		}
	}
}

func TestParseUsers(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"alice:secret,bob:secret2", map[string]string{"alice": "secret", "bob": "secret2"}, false},
		{"# users\nalice:se:cret\n\n bob:x \n", map[string]string{"alice": "se:cret", "bob": "x"}, false},
		{"alice:", map[string]string{"alice": ""}, false},
		{"alice", nil, true},
		{":pw", nil, true},
		{"al-ice:pw", nil, true},
		{"alice:a,alice:b", nil, true},
	}
	for _, tt := range tests {
		got, err := ParseUsers(strings.NewReader(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseUsers(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if !tt.wantErr && !equalMaps(got, tt.want) {
			t.Errorf("ParseUsers(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestELNPathGuard checks the handler's own guard, which the mux's path
// cleaning normally hides.
func TestELNPathGuard(t *testing.T) {
	f := newFixture(t)
	srv := f.srv.Config.Handler.(*Server)
	for _, p := range []string{"etc/../../x", "../html/etc/InstanceProfile.js", "./etc/InstanceProfile.js", "etc//InstanceProfile.js"} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = ELNPath + p
		srv.serveELN(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, rec.Code)
		}
	}
}
