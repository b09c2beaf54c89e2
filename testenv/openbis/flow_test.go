package openbis

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// browserStubs stands in for the browser and jQuery around the page's
// scripts: $.ajax goes through goAjax (in Go), the DOM is a map of
// elements, and window.open/alert fail the test because the stand-in must
// not use them.
const browserStubs = `
var readyQueue = [];
var ajaxCalls = [];
var assigned = [];
function $(fn) { if (typeof fn === "function") readyQueue.push(fn); }
$.extend = function(t) {
	for (var i = 1; i < arguments.length; i++) for (var k in arguments[i]) t[k] = arguments[i][k];
	return t;
};
// Like jQuery: success with the parsed JSON when dataType is json or the
// answer says application/json, error(xhr) on a non-2xx status.
$.ajax = function(s) {
	var rec = {};
	Object.keys(s).forEach(function(k) { if (typeof s[k] !== "function") rec[k] = s[k]; });
	ajaxCalls.push(rec);
	var r = goAjax(s.url, s.type, String(s.data));
	if (r.status >= 200 && r.status < 300) {
		var json = s.dataType === "json" || r.contentType.indexOf("application/json") === 0;
		s.success(json ? JSON.parse(r.body) : r.body);
	} else {
		s.error({ status: r.status, statusText: r.statusText, responseText: r.body });
	}
};
var elements = {};
var document = {
	getElementById: function(id) {
		if (!elements[id]) {
			elements[id] = { id: id, value: "", textContent: "", hidden: true, disabled: false, href: "", listeners: {},
				addEventListener: function(type, fn) { this.listeners[type] = fn; } };
		}
		return elements[id];
	}
};
function fire(id, type) { elements[id].listeners[type]({ preventDefault: function() {} }); }
var window = {
	location: { search: "", assign: function(u) { assigned.push(u); } },
	open: function() { throw new Error("window.open called"); }
};
function alert(m) { throw new Error("alert called: " + m); }
`

// service is a fake JupyterHub integration service: it answers the ELN's
// POSTs the way the real one does, {"fileName": …}.
type service struct {
	status   int    // 0 means 200
	rename   string // the fileName to answer with; "" keeps the requested one
	requests []string
}

func (s *service) answer(u string) (int, string) {
	s.requests = append(s.requests, u)
	if s.status != 0 && s.status != http.StatusOK {
		return s.status, "no"
	}
	q, _ := url.Parse(u)
	name := q.Query().Get("filename")
	if s.rename != "" {
		name = s.rename
	}
	b, _ := json.Marshal(map[string]string{"fileName": name})
	return http.StatusOK, string(b)
}

type page struct {
	vm  *goja.Runtime
	svc *service
}

// loadPage runs the page's scripts, in the page's order, against the
// fixture's server, with the query string search.
func loadPage(t *testing.T, f *fixture, profile, search string, svc *service) *page {
	t.Helper()
	vm := goja.New()
	vm.Set("goAjax", func(u, method, body string) map[string]any {
		if strings.HasPrefix(u, "https://jh.example:8002") {
			status, out := svc.answer(u)
			return map[string]any{"status": status, "statusText": http.StatusText(status), "body": out, "contentType": "application/json"}
		}
		// Relative URLs go to the stand-in, as from the page's origin.
		req, err := http.NewRequest(method, f.srv.URL+u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return map[string]any{"status": resp.StatusCode, "statusText": http.StatusText(resp.StatusCode), "body": string(b), "contentType": resp.Header.Get("Content-Type")}
	})
	if _, err := vm.RunScript("stubs.js", browserStubs); err != nil {
		t.Fatal(err)
	}
	scripts := []struct{ name, src string }{
		{"StandardProfile.js", readEmbedded(t, "eln/js/config/StandardProfile.js")},
		{"InstanceProfile.js", profile},
		{"JupyterUtil.js", readEmbedded(t, "eln/js/util/JupyterUtil.js")},
		{"main.js", readEmbedded(t, "eln/js/standin/main.js")},
	}
	for _, s := range scripts {
		if _, err := vm.RunScript(s.name, s.src); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	p := &page{vm: vm, svc: svc}
	p.run(t, `Util.guid = function() { return "GUID"; };
		window.location.search = `+jsQuote(search)+`;
		readyQueue.forEach(function(fn) { fn(); });`)
	return p
}

func readEmbedded(t *testing.T, name string) string {
	t.Helper()
	b, err := elnFiles.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func jsQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (p *page) run(t *testing.T, src string) goja.Value {
	t.Helper()
	v, err := p.vm.RunString(src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	return v
}

func (p *page) str(t *testing.T, expr string) string {
	t.Helper()
	return p.run(t, expr).String()
}

// calls returns the settings each $.ajax call got, functions left out.
func (p *page) calls(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(p.str(t, `JSON.stringify(ajaxCalls)`)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (p *page) assigned(t *testing.T) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(p.str(t, `JSON.stringify(assigned)`)), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

const loginBody = `{"method":"login","params":["alice","secret"],"id":"1","jsonrpc":"2.0"}`

func TestELNFlow(t *testing.T) {
	tests := []struct {
		name       string
		search     string
		svc        service
		folder     string // as sent
		sentName   string // filename= in both POSTs
		storedName string // what the service answered, used after
		navigate   bool
	}{
		{"defaults", "?user=alice&password=secret", service{}, "openbis", "20251201120000000-2.ipynb", "20251201120000000-2.ipynb", true},
		{"overrides", "?user=alice&password=secret&folder=F1&filename=analysis", service{}, "F1", "analysis.ipynb", "analysis.ipynb", true},
		{"service renames", "?user=alice&password=secret&filename=analysis", service{rename: "analysis_1.ipynb"}, "openbis", "analysis.ipynb", "analysis_1.ipynb", true},
		{"no navigation", "?user=alice&password=secret&open=0&filename=a+b", service{}, "openbis", "a b.ipynb", "a b.ipynb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			svc := tt.svc
			p := loadPage(t, f, testProfile, tt.search, &svc)
			if got := p.str(t, `elements.status.textContent`); got != "logged in as alice" {
				t.Fatalf("status after load %q", got)
			}
			if p.run(t, `elements["create-notebook"].disabled`).ToBoolean() {
				t.Fatal("button disabled after login")
			}
			p.run(t, `fire("create-notebook", "click")`)

			calls := p.calls(t)
			if len(calls) != 3 {
				t.Fatalf("%d ajax calls, want 3: %v", len(calls), calls)
			}
			// The login, as openbis.js posts it.
			wantLogin := map[string]any{"url": APIPath, "type": "POST", "processData": false, "dataType": "json", "data": loginBody}
			assertSettings(t, "login", calls[0], wantLogin)
			var tok string
			if err := json.Unmarshal([]byte(p.str(t, `JSON.stringify(mainController.serverFacade.getSession())`)), &tok); err != nil || !tokenShape.MatchString(tok) {
				t.Fatalf("session %q", tok)
			}
			// The two POSTs of JupyterUtil.createJupyterNotebookAndOpen.
			base := "https://jh.example:8002?token=" + tok + "&folder=" + tt.folder + "&filename=" + tt.sentName
			assertSettings(t, "test=True", calls[1], map[string]any{"url": base + "&test=True", "type": "POST", "crossDomain": true, "data": "TEST"})
			assertSettings(t, "test=False", calls[2], map[string]any{"url": base + "&test=False", "type": "POST", "crossDomain": true, "data": calls[2]["data"]})
			assertNotebook(t, calls[2]["data"].(string), tt.storedName)

			hub := "https://jh.example/hub/login?token=" + tok + "&next=" + url.QueryEscape("/user/alice/notebooks/"+tt.folder+"/"+tt.storedName)
			hub = strings.ReplaceAll(hub, "+", "%20") // encodeURIComponent
			if got := p.str(t, `elements["hub-link"].href`); got != hub {
				t.Errorf("hub link\n got %s\nwant %s", got, hub)
			}
			nav := p.assigned(t)
			wantStatus := "opening " + hub
			if !tt.navigate {
				wantStatus = "notebook created: " + tt.storedName
				if len(nav) != 0 {
					t.Errorf("navigated to %v with open=0", nav)
				}
			} else if len(nav) != 1 || nav[0] != hub {
				t.Errorf("navigated to %v, want %s", nav, hub)
			}
			if got := p.str(t, `elements.status.textContent`); got != wantStatus {
				t.Errorf("status %q, want %q", got, wantStatus)
			}
		})
	}
}

func TestELNFlowErrors(t *testing.T) {
	noJupyter := strings.Replace(testProfile, "this.jupyterEndpoint", "// this.jupyterEndpoint", 1)
	tests := []struct {
		name, profile, search string
		svc                   service
		click                 bool
		wantStatus            string
		wantCalls             int
	}{
		{"bad password", testProfile, "?user=alice&password=wrong", service{}, false, "error: login failed for alice", 1},
		{"not logged in", testProfile, "", service{}, false, "not logged in", 0},
		{"jupyter not configured", noJupyter, "?user=alice&password=secret", service{}, false, "error: Jupyter is not configured in InstanceProfile.js", 0},
		{"no profile", "", "?user=alice&password=secret", service{}, false, "error: etc/InstanceProfile.js did not load", 0},
		{"service refuses", testProfile, "?user=alice&password=secret&filename=n", service{status: 403}, true, "error: check notebook name: HTTP 403 Forbidden: no", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			svc := tt.svc
			p := loadPage(t, f, tt.profile, tt.search, &svc)
			if tt.click {
				p.run(t, `fire("create-notebook", "click")`)
			}
			if got := p.str(t, `elements.status.textContent`); got != tt.wantStatus {
				t.Errorf("status %q, want %q", got, tt.wantStatus)
			}
			if n := len(p.calls(t)); n != tt.wantCalls {
				t.Errorf("%d ajax calls, want %d", n, tt.wantCalls)
			}
			if nav := p.assigned(t); len(nav) != 0 {
				t.Errorf("navigated to %v", nav)
			}
		})
	}
}

// TestELNLoginForm logs in through the form instead of query parameters.
func TestELNLoginForm(t *testing.T) {
	f := newFixture(t)
	p := loadPage(t, f, testProfile, "", &service{})
	if !p.run(t, `elements["create-notebook"].disabled = true; elements["create-notebook"].disabled`).ToBoolean() {
		t.Fatal("setup")
	}
	p.run(t, `document.getElementById("user").value = "bob"; document.getElementById("password").value = "secret2"; fire("login-form", "submit")`)
	if got := p.str(t, `elements.status.textContent`); got != "logged in as bob" {
		t.Errorf("status %q", got)
	}
	if p.run(t, `elements["create-notebook"].disabled`).ToBoolean() {
		t.Error("button still disabled")
	}
}

func assertSettings(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("%s: $.ajax settings\n got %s\nwant %s", what, gb, wb)
	}
}

// assertNotebook checks the notebook JSON the ELN sends names the file, the
// data set, its owner object and the result's owner.
func assertNotebook(t *testing.T, body, fileName string) {
	t.Helper()
	var nb struct {
		Cells []struct {
			CellType string `json:"cell_type"`
			Metadata struct {
				CodeCellID *string `json:"code_cell_id"`
			} `json:"metadata"`
			Source []string `json:"source"`
		} `json:"cells"`
		Metadata      map[string]any `json:"metadata"`
		NBFormat      int            `json:"nbformat"`
		NBFormatMinor int            `json:"nbformat_minor"`
	}
	if err := json.Unmarshal([]byte(body), &nb); err != nil {
		t.Fatalf("notebook body: %v", err)
	}
	if nb.NBFormat != 4 || nb.NBFormatMinor != 2 || nb.Metadata["autogenerated_by_openbis"] != true {
		t.Errorf("notebook header: nbformat %d.%d, metadata %v", nb.NBFormat, nb.NBFormatMinor, nb.Metadata)
	}
	vars := map[string]string{}
	var all []string
	for _, c := range nb.Cells {
		src := strings.Join(c.Source, "")
		all = append(all, src)
		if c.Metadata.CodeCellID != nil {
			vars[*c.Metadata.CodeCellID] = src
		}
	}
	wantVars := map[string]string{
		"fileName":               "fileName='" + fileName + "'",
		"resultDatasetParents":   `resultDatasetParents=["20251201120000000-2"]`,
		"resultDatasetHistoryId": "resultDatasetHistoryId='GUID'",
	}
	for k, v := range wantVars {
		if vars[k] != v {
			t.Errorf("cell %s = %q, want %q", k, vars[k], v)
		}
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{
		"from pybis import Openbis\no = Openbis()",
		"s0 = o.get_object('20251201120000000-1')\ns0",
		"ds0 = o.get_dataset('20251201120000000-2')\nds0.attrs",
		"ds0.download(files=ds0.file_list, destination='./', wait_until_finished=True)",
		"owner= o.get_object('/DEFAULT/DEFAULT/SAMPLE1'),\nowner",
		"sample= o.get_object('/DEFAULT/DEFAULT/SAMPLE1'),\n",
		"props={'$name': resultDatasetName",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("notebook lacks %q", want)
		}
	}
}
