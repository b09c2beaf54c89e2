package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestStaticBinary builds the stand-in as the test servers get it, runs it
// on loopback with a fresh certificate and logs in over TLS.
func TestStaticBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "openbis-standin")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	// A static binary has no program interpreter: the test servers have
	// no Go and no libc to match.
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s is dynamically linked", bin)
		}
	}
	ef.Close()

	certPEM, keyPEM, pool := selfSigned(t)
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	crt, key := write("crt.pem", certPEM), write("key.pem", keyPEM)
	write("html/etc/InstanceProfile.js", "// profile\n")
	jq := write("jquery.min.js", "/* jq */")
	users := write("users", "# test users\nbob:secret2\n")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-listen", "127.0.0.1:0", "-cert", crt, "-key", key,
		"-users", "alice:secret", "-users-file", users, "-eln-root", filepath.Join(dir, "html"), "-jquery", jq)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving https on (\S+)`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "https://" + a
	case <-ctx.Done():
		t.Fatal("the stand-in did not start")
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, tc := range []struct{ user, password, wantPrefix string }{
		{"alice", "secret", `"result":"alice-`},
		{"bob", "secret2", `"result":"bob-`},
		{"bob", "nope", `"result":null`},
	} {
		body := `{"id":"1","jsonrpc":"2.0","method":"login","params":["` + tc.user + `","` + tc.password + `"]}`
		resp, err := client.Post(base+"/openbis/openbis/rmi-application-server-v3.json", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), tc.wantPrefix) {
			t.Errorf("login %s/%s: %s", tc.user, tc.password, b)
		}
	}
	resp, err := client.Get(base + "/openbis/webapp/eln-lims/etc/InstanceProfile.js")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "// profile\n" {
		t.Errorf("profile %q", b)
	}
}

func TestFlagErrors(t *testing.T) {
	tests := [][]string{
		{"-cert", "c"},
		{"-cert", "c", "-key", "k"},
		{"-cert", "c", "-key", "k", "-users", "alice"},
		{"-nope"},
	}
	for _, args := range tests {
		if err := run(context.Background(), args); err == nil {
			t.Errorf("run(%q): no error", args)
		}
	}
}

func selfSigned(t *testing.T) (certPEM, keyPEM string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "openbis stand-in test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})), pool
}
