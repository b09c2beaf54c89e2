package firewalld

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Docker is a dockerd running in a named network namespace WITH its
// iptables rules (they stay in that namespace), talking to the private
// firewalld through DBUS_SYSTEM_BUS_ADDRESS, as on a real server.
type Docker struct {
	Host string // DOCKER_HOST form: unix:///…/docker.sock
	Dir  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartDocker starts dockerd in namespace ns. Its bridge uses bip (e.g.
// "203.0.113.1/24"). Call Stop, also after an error.
func StartDocker(ctx context.Context, dir, ns, bus, bip string) (*Docker, error) {
	for _, bin := range []string{"dockerd", "docker", "containerd", "runc", "nsenter", "iptables"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not found (apt-get install -y docker.io iptables): %w", bin, err)
		}
	}
	d := &Docker{Dir: dir, Host: "unix://" + filepath.Join(dir, "docker.sock"), done: make(chan struct{})}
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		return d, err
	}
	defer logf.Close()
	// nsenter, not `ip netns exec`: the latter remounts /sys and hides the
	// cgroup tree runc needs. nsenter execs dockerd: the PID is dockerd's.
	d.cmd = exec.Command("nsenter", "--net="+Path(ns), "--",
		"dockerd",
		"--data-root", filepath.Join(dir, "root"),
		"--exec-root", filepath.Join(dir, "exec"),
		"-H", d.Host,
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--bip", bip,
	)
	d.cmd.Env = append(os.Environ(), "DBUS_SYSTEM_BUS_ADDRESS="+bus, "DOCKER_HOST=")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		return d, fmt.Errorf("start dockerd: %w", err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	err = waitFor(ctx, 60*time.Second, func() error {
		select {
		case <-d.done:
			return errExited
		default:
		}
		c, err := net.DialTimeout("unix", filepath.Join(dir, "docker.sock"), time.Second)
		if err != nil {
			return err
		}
		c.Close()
		_, err = d.CLI(ctx, nil, "version", "--format", "{{.Server.Version}}")
		return err
	})
	if err != nil {
		return d, fmt.Errorf("dockerd did not come up: %w\n%s", err, d.Log())
	}
	return d, nil
}

// Log is dockerd's output.
func (d *Docker) Log() string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	return string(b)
}

// CLI runs the docker client against this daemon.
func (d *Docker) CLI(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", d.Host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// ImportBusybox imports a one-binary image (Debian's busybox-static) as
// ref: offline, no registry.
func (d *Docker) ImportBusybox(ctx context.Context, ref string) error {
	bin, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("read busybox (apt-get install -y busybox-static): %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	tw.WriteHeader(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777})
	tw.WriteHeader(&tar.Header{Name: "www/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "www/index.html", Typeflag: tar.TypeReg, Mode: 0o644, Size: 3})
	tw.Write([]byte("ok\n"))
	if err := tw.Close(); err != nil {
		return err
	}
	_, err = d.CLI(ctx, buf.Bytes(), "import", "-", ref)
	return err
}

// Stop removes all containers, then terminates dockerd by PID and waits
// (dockerd stops its containerd and unmounts its layers itself).
func (d *Docker) Stop() error {
	if d == nil || d.cmd == nil || d.cmd.Process == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	select {
	case <-d.done:
	default:
		if ids, err := d.CLI(ctx, nil, "ps", "-aq"); err == nil && ids != "" {
			d.CLI(ctx, nil, append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
	}
	return stopWait(d.cmd.Process, d.done)
}
