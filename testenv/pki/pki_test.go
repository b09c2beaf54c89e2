package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestIssueVerifies(t *testing.T) {
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		names   []string
		verify  string // host name or IP the client checks
		wantErr bool
	}{
		{"dns", []string{"jupyterhub.test"}, "jupyterhub.test", false},
		{"ip", []string{"172.17.0.1"}, "172.17.0.1", false},
		{"ipv6", []string{"::1"}, "::1", false},
		{"mixed", []string{"openbis.test", "127.0.0.1"}, "127.0.0.1", false},
		{"other name", []string{"jupyterhub.test"}, "openbis.test", true},
		{"other ip", []string{"127.0.0.1"}, "127.0.0.2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			certPEM, keyPEM, err := ca.Issue(tt.names...)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
				t.Fatalf("key pair: %v", err)
			}
			b, _ := pem.Decode(certPEM)
			leaf, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			_, err = leaf.Verify(x509.VerifyOptions{
				DNSName:   tt.verify,
				Roots:     ca.Pool(),
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if (err != nil) != tt.wantErr {
				t.Fatalf("verify %s: err %v, want error %v", tt.verify, err, tt.wantErr)
			}
			// Past provision's 30-day expiry warning, so plans stay quiet.
			if d := leaf.NotAfter.Sub(time.Now()); d < LeafValidity-time.Hour || d > LeafValidity {
				t.Errorf("valid for %s more, want about %s", d, LeafValidity)
			}
		})
	}
}

func TestIssueRejects(t *testing.T) {
	ca, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "ca"))
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range [][]string{nil, {""}} {
		if _, _, err := ca.Issue(names...); err == nil {
			t.Errorf("Issue(%q) succeeded, want an error", names)
		}
	}
}

// TestOtherCADoesNotVerify guards against a test passing because any
// certificate would do.
func TestOtherCADoesNotVerify(t *testing.T) {
	a, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadOrCreateCA(filepath.Join(t.TempDir(), "b"))
	if err != nil {
		t.Fatal(err)
	}
	certPEM, _, err := a.Issue("host.test")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(certPEM)
	leaf, _ := x509.ParseCertificate(blk.Bytes)
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "host.test", Roots: b.Pool()}); err == nil {
		t.Fatal("a leaf of CA a verified against CA b")
	}
}

func TestLoadOrCreateCACachesAndRaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	const n = 8
	cas := make([]*CA, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cas[i], errs[i] = LoadOrCreateCA(dir)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if string(cas[i].CertPEM()) != string(cas[0].CertPEM()) {
			t.Fatalf("racing callers got different CAs")
		}
	}
	again, err := LoadOrCreateCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.CertPEM()) != string(cas[0].CertPEM()) {
		t.Fatal("second load made a new CA")
	}
	modes := []struct {
		path string
		want os.FileMode
	}{{dir, 0o700 | os.ModeDir}, {filepath.Join(dir, KeyFile), 0o600}}
	for _, m := range modes {
		fi, err := os.Stat(m.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != m.want {
			t.Errorf("%s: mode %v, want %v", m.path, fi.Mode(), m.want)
		}
	}
	if !again.Certificate().IsCA {
		t.Error("CA certificate is not a CA")
	}
}
