package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/openbis/provision/executors"
)

// DefaultLockPath serialises applies on one host. Its directory is
// root's own: in world-writable /run/lock another user could hold the lock
// forever.
const DefaultLockPath = "/run/provision/apply.lock"

// Lock is a held flock on the lock file.
type Lock struct{ f *os.File }

// AcquireLock takes the lock at path. While another provision holds it, wait is
// called once with that process's pid, then AcquireLock polls until ctx ends; a
// lock held by a dead process is released by the kernel, so none goes stale.
func AcquireLock(ctx context.Context, path string, wait func(holder string)) (*Lock, error) {
	dir := filepath.Dir(path)
	if err := executors.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := checkPrivate(dir); err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	told := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !told && wait != nil {
			b := make([]byte, 32)
			n, _ := f.ReadAt(b, 0)
			wait(strings.TrimSpace(string(b[:n])))
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: another provision still holds it: %w", path, context.Cause(ctx))
		case <-time.After(100 * time.Millisecond):
		}
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return &Lock{f: f}, nil
}

// Release drops the lock.
func (l *Lock) Release() error {
	defer l.f.Close()
	l.f.Truncate(0)
	return unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
}

// checkPrivate refuses a lock directory that another user could write to:
// they could hold the lock, or swap the file under it.
func checkPrivate(dir string) error {
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*unix.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("%s is not a directory", dir)
	case ok && int(st.Uid) != os.Geteuid():
		return fmt.Errorf("%s belongs to uid %d, not to this user (%d); use a directory of your own with --lock-file", dir, st.Uid, os.Geteuid())
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("%s is writable by others (%v); use a directory only its owner can write with --lock-file", dir, fi.Mode().Perm())
	}
	return nil
}
