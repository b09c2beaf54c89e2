// Package cache holds what the test harnesses' caches under
// /var/cache/provision-test share: one builder at a time.
package cache

import (
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive flock on path, creating it, and waits for other
// builders; unlock releases it.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
