package freshserver

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"
)

// StandIn describes a tiny offline stand-in for the JupyterHub image: a
// busybox-static root file system whose ./vagrant/initialize/start_jupyterhub.sh
// serves a page with its version and environment on $JUPYTERHUB_PORT (8000),
// or, when Broken, exits with an error as a bad upgrade would.
type StandIn struct {
	// Ref is the image reference to tag it as, e.g. "standin/jupyterhub:1".
	Ref string
	// Version is shown on the page's first line ("standin version: V").
	Version string
	// Broken makes the start script fail instead of serving.
	Broken bool
}

// StartCommand is the command the guide's docker run passes to the image.
const StartCommand = "./vagrant/initialize/start_jupyterhub.sh"

// applets are the busybox commands the stand-in's scripts and the tests use.
var applets = []string{"sh", "env", "mkdir", "httpd", "cat", "echo", "sleep", "kill", "chown", "chmod", "stat", "find"}

func (img StandIn) script() string {
	if img.Broken {
		return fmt.Sprintf(`#!/bin/sh
echo "stand-in JupyterHub %s: broken on purpose, exiting" >&2
exit 1
`, shellSafe(img.Version))
	}
	return fmt.Sprintf(`#!/bin/sh
# Stand-in JupyterHub: serves its version and environment over HTTP.
mkdir -p /tmp/www
{ echo "standin version: %s"; env; } >/tmp/www/index.html
httpd -f -p "${JUPYTERHUB_PORT:-8000}" -h /tmp/www &
pid=$!
# As pid 1 of the container the shell ignores SIGTERM unless it traps it.
trap 'kill $pid; exit 0' TERM INT
echo "stand-in JupyterHub %s listening on ${JUPYTERHUB_PORT:-8000}"
wait $pid
`, shellSafe(img.Version), shellSafe(img.Version))
}

// shellSafe keeps test versions from needing quoting inside the script.
func shellSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-+:", r) {
			return r
		}
		return '_'
	}, s)
}

// WriteStandInTar writes the stand-in's root file system as a tar stream
// (for `docker import`) using the busybox-static binary at busybox.
func WriteStandInTar(w io.Writer, busybox string, img StandIn) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return fmt.Errorf("read busybox: %w", err)
	}
	tw := tar.NewWriter(w)
	now := time.Unix(0, 0)
	dir := func(name string) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: now})
	}
	file := func(name string, mode int64, content []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(content)), ModTime: now}); err != nil {
			return err
		}
		_, err := tw.Write(content)
		return err
	}
	for _, d := range []string{"bin", "tmp", "www", "etc", "vagrant", "vagrant/initialize"} {
		if err := dir(d); err != nil {
			return err
		}
	}
	if err := file("bin/busybox", 0o755, bb); err != nil {
		return err
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: path.Join("bin", a), Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return err
		}
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/:/bin/sh\n")); err != nil {
		return err
	}
	if err := file(StartCommand[2:], 0o755, []byte(img.script())); err != nil {
		return err
	}
	return tw.Close()
}

// ImportStandIn builds the stand-in image and imports it into the server's
// dockerd under img.Ref, using the server's own busybox and docker CLI.
func (s *Server) ImportStandIn(ctx context.Context, img StandIn) error {
	f, err := os.CreateTemp(s.Root+"/tmp", "standin-*.tar")
	if err != nil {
		return fmt.Errorf("stand-in image %s: %w", img.Ref, err)
	}
	defer os.Remove(f.Name())
	err = WriteStandInTar(f, s.Root+"/bin/busybox", img)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("stand-in image %s: %w", img.Ref, err)
	}
	inside := "/tmp/" + path.Base(f.Name())
	if _, err := s.Exec(ctx, "docker", "import", "-c", "WORKDIR /", "-c", "ENV PATH=/bin", inside, img.Ref); err != nil {
		return fmt.Errorf("stand-in image %s: %w", img.Ref, err)
	}
	return nil
}
