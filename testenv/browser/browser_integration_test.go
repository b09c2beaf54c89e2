//go:build integration

package browser_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbis/provision/testenv/browser"
	"github.com/openbis/provision/testenv/netlab"
)

// testCA makes a throwaway CA and one server certificate for names.
func testCA(t *testing.T, names ...string) (caPEM []byte, cert tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "provision test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// serveTLS serves h over TLS on addr inside m's namespace until t ends.
func serveTLS(t *testing.T, m *netlab.Member, addr string, cert tls.Certificate, h http.Handler) {
	t.Helper()
	l, err := m.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
		// The untrusted case makes handshake errors on purpose.
		ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go srv.ServeTLS(l, "", "")
	t.Cleanup(func() { srv.Close() })
}

// The ELN page: like JupyterUtil.js, a cross-origin POST with a JSON body
// (so the browser sends a CORS preflight first) to the integration
// service, whose answer goes into the DOM.
const page = `<!doctype html><title>ELN stand-in</title>
<h1>ELN</h1><p id="status">loading</p>
<script>
fetch("https://jupyterhub.example:8002/?token=T&folder=F&filename=N.ipynb&test=True", {
	method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify({cells: []}),
}).then(r => r.json()).then(j => {
	const p = document.createElement("p"); p.id = "result"; p.textContent = j.fileName;
	document.body.appendChild(p);
}).catch(e => { document.getElementById("status").textContent = "error: " + e; });
</script>`

func TestPageFetchesCrossOrigin(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := netlab.New(ctx)
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("close lab: %v", err)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var alice, openbis, jupyterhub *netlab.Member
	for _, m := range []struct {
		p    **netlab.Member
		name string
	}{{&alice, "alice"}, {&openbis, "openbis"}, {&jupyterhub, "jupyterhub"}} {
		if *m.p, err = lab.AddUser(ctx, m.name); err != nil {
			t.Fatal(err)
		}
	}
	if err := lab.SetHosts(map[string][]string{
		"openbis.example":    {openbis.Addr},
		"jupyterhub.example": {jupyterhub.Addr},
	}); err != nil {
		t.Fatal(err)
	}

	caPEM, cert := testCA(t, "openbis.example", "jupyterhub.example")
	const origin = "https://openbis.example:8443"
	serveTLS(t, openbis, ":8443", cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, page)
	}))
	var mu sync.Mutex
	var callers []string
	serveTLS(t, jupyterhub, ":8002", cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Methods", "POST")
		w.Header().Set("Access-Control-Allow-Headers", "Content-Type")
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		callers = append(callers, r.Method+" "+host)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"fileName": %q}`, r.URL.Query().Get("filename"))
	}))

	tests := []struct {
		name    string
		ca      []byte
		wantErr string // in the navigation error; "" for success
	}{
		{"trusted CA", caPEM, ""},
		{"no CA", nil, "ERR_CERT_AUTHORITY_INVALID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			start := time.Now()
			b, err := browser.Start(ctx, browser.Options{NS: alice.NS, CAPEM: tt.ca, Log: &out})
			if err != nil {
				t.Fatalf("%v\n%s", err, out.String())
			}
			started := time.Since(start)
			profile, pid := b.Profile, b.Pid()
			defer func() {
				if err := b.Close(); err != nil {
					t.Errorf("close browser: %v", err)
				}
				checkNoLeftovers(t, profile, pid)
			}()

			navErr := b.Navigate(ctx, origin+"/")
			if tt.wantErr != "" {
				if navErr == nil || !strings.Contains(navErr.Error(), tt.wantErr) {
					t.Fatalf("navigate without the CA: %v, want an error with %s", navErr, tt.wantErr)
				}
				return
			}
			if navErr != nil {
				t.Fatal(navErr)
			}
			wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
			defer wcancel()
			got, err := b.WaitText(wctx, "#result")
			if err != nil {
				status, _ := browser.Eval[string](ctx, b, `document.getElementById("status").textContent`)
				t.Fatalf("%v (page status %q)\n%s", err, status, out.String())
			}
			t.Logf("browser started in %s; start → page result %s", started, time.Since(start))
			if got != "N.ipynb" {
				t.Errorf("result = %q, want N.ipynb", got)
			}
			mu.Lock()
			if len(callers) != 1 || callers[0] != "POST "+alice.Addr {
				t.Errorf("integration service called by %v, want one POST from %s", callers, alice.Addr)
			}
			mu.Unlock()
			title, err := browser.Eval[string](ctx, b, `Promise.resolve(document.title)`)
			if err != nil || title != "ELN stand-in" {
				t.Errorf("title = %q, %v", title, err)
			}

			shot := filepath.Join(t.TempDir(), "page.png")
			if err := b.Screenshot(ctx, shot); err != nil {
				t.Fatal(err)
			}
			png, err := os.ReadFile(shot)
			if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
				t.Errorf("screenshot is not a PNG (%d bytes, %v)", len(png), err)
			}
		})
	}
}

// checkNoLeftovers fails t if the profile or any process of the browser remains.
func checkNoLeftovers(t *testing.T, profile string, pid int) {
	t.Helper()
	if _, err := os.Stat(profile); !os.IsNotExist(err) {
		t.Errorf("profile %s left after Close (%v)", profile, err)
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte(profile)) {
			t.Errorf("process %s of the browser left after Close: %q", e.Name(), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if !strings.Contains(string(stat), ") Z ") {
			t.Errorf("browser pid %d still running after Close", pid)
		}
	}
}
