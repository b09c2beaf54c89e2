// Command openbis-standin serves the openBIS stand-in (package
// testenv/openbis) over TLS: the V3 JSON-RPC session API and the ELN page.
// It is built static (CGO_ENABLED=0) to run in throwaway Debian test servers
// that have no Go.
//
//	openbis-standin -listen :8443 -cert crt.pem -key key.pem \
//	    -users alice:secret,bob:secret2 \
//	    -eln-root /opt/openbis/servers/core-plugins/eln-lims/1/as/webapps/eln-lims/html \
//	    -jquery /usr/share/javascript/jquery/jquery.min.js
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/openbis/provision/testenv/openbis"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		log.Fatalf("openbis-standin: %v", err)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("openbis-standin", flag.ContinueOnError)
	listen := fs.String("listen", ":8443", "address to listen on")
	cert := fs.String("cert", "", "TLS certificate chain, PEM (required)")
	key := fs.String("key", "", "TLS private key, PEM (required)")
	users := fs.String("users", "", "users as user:password,user:password")
	usersFile := fs.String("users-file", "", "file of user:password lines (# comments)")
	elnRoot := fs.String("eln-root", "", "the ELN's html directory, holding etc/InstanceProfile.js (required)")
	jquery := fs.String("jquery", "/usr/share/javascript/jquery/jquery.min.js", "jquery.min.js to serve")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cert == "" || *key == "" {
		return errors.New("-cert and -key are required")
	}
	all, err := readUsers(*users, *usersFile)
	if err != nil {
		return err
	}
	h, err := openbis.NewServer(openbis.Config{Users: all, ELNRoot: *elnRoot, JQuery: *jquery})
	if err != nil {
		return err
	}
	srv := &http.Server{
		Addr:              *listen,
		Handler:           logRequests(h),
		ReadHeaderTimeout: 10 * time.Second,
	}
	// Listen first so that the log names the real address (for -listen :0).
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, *cert, *key) }()
	log.Printf("openbis-standin: serving https on %s (ELN root %s)", ln.Addr(), *elnRoot)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

func readUsers(list, file string) (map[string]string, error) {
	all := make(map[string]string)
	add := func(src string, m map[string]string) error {
		for u, p := range m {
			if _, dup := all[u]; dup {
				return fmt.Errorf("%s: user %q given twice", src, u)
			}
			all[u] = p
		}
		return nil
	}
	if list != "" {
		m, err := openbis.ParseUsers(strings.NewReader(list))
		if err != nil {
			return nil, fmt.Errorf("-users: %w", err)
		}
		if err := add("-users", m); err != nil {
			return nil, err
		}
	}
	if file != "" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		m, err := openbis.ParseUsers(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		if err := add(file, m); err != nil {
			return nil, err
		}
	}
	if len(all) == 0 {
		return nil, errors.New("no users: give -users or -users-file")
	}
	return all, nil
}

// logRequests logs one line a request, for the test servers' journals.
func logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Printf("%s %s %s", r.RemoteAddr, r.Method, r.URL.Path)
		h.ServeHTTP(w, r)
	})
}
