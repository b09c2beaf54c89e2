package freshserver

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"time"
)

const hostKeyFile = "/etc/ssh/ssh_host_ed25519_key"

// EnableSSH lets root log in to the server over SSH with authorizedKeys
// (authorized_keys lines) and returns the server's public host key,
// "ssh-ed25519 AAAA…", for the client's known_hosts.
//
// The root file system ships openssh-server disabled and without host
// keys, so that no two servers share one: EnableSSH makes this server's
// key, then (re)starts ssh.service through the server's systemd and waits
// until sshd answers on port 22. firewalld's default zone admits SSH.
func (s *Server) EnableSSH(ctx context.Context, authorizedKeys []byte) (hostKey string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// ssh-keygen asks before overwriting: a second call makes a new key.
	if _, err := s.Exec(ctx, "rm", "-f", hostKeyFile, hostKeyFile+".pub"); err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	if _, err := s.Exec(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", hostKeyFile); err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	// Only the key made above: sshd would complain about the missing ones.
	if err := os.WriteFile(s.Root+"/etc/ssh/sshd_config.d/freshserver.conf", []byte("HostKey "+hostKeyFile+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	ssh := s.Root + "/root/.ssh"
	if err := os.MkdirAll(ssh, 0o700); err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	if err := os.Chmod(ssh, 0o700); err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	if err := os.WriteFile(ssh+"/authorized_keys", authorizedKeys, 0o600); err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	if _, err := s.Exec(ctx, "systemctl", "restart", "ssh.service"); err != nil {
		journal, _ := s.Journal(context.Background(), "ssh.service", 20)
		return "", fmt.Errorf("enable ssh: %w\n%s", err, journal)
	}
	if err := s.waitSSH(ctx); err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	pub, err := os.ReadFile(s.Root + hostKeyFile + ".pub")
	if err != nil {
		return "", fmt.Errorf("enable ssh: %w", err)
	}
	f := strings.Fields(string(pub))
	if len(f) < 2 {
		return "", fmt.Errorf("enable ssh: malformed host key %q", pub)
	}
	return f[0] + " " + f[1], nil
}

// waitSSH waits until sshd sends its banner on the server's port 22.
func (s *Server) waitSSH(ctx context.Context) error {
	for {
		c, err := s.DialContext(ctx, "tcp", "127.0.0.1:22")
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, rerr := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(line, "SSH-") {
				return nil
			}
			err = fmt.Errorf("banner %q: %v", line, rerr)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshd does not answer on port 22: %w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
