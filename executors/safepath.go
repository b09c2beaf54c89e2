package executors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Managed paths are resolved one component at a time from "/" (or from
// the working directory, for a relative path), each opened with
// O_PATH|O_NOFOLLOW relative to the directory before it, so the kernel
// never follows a symlink on provision's behalf. A symlink met on the way
// is followed only when it could not have been planted by an unprivileged
// user: the link itself and the directory holding it are owned by root
// (or by the user running provision, when that is not root), and that
// directory is not writable by group or others. Anything else is refused,
// so a user who owns a directory under a managed path cannot redirect a
// read (and a diff in the journal) or a write, chown or delete into a
// directory only root can reach. The last component is never followed,
// whoever owns it. The walk ends with a descriptor of the parent
// directory, and every operation on the file goes through it, so a
// symlink planted after the walk is not followed either.

// maxSymlinks bounds the symlinks one path may pass through, as the
// kernel's own limit does.
const maxSymlinks = 40

// symlinkError names a symlink in a path that was not followed, and why.
type symlinkError struct {
	link    string // the path of the symlink itself
	why     string
	trusted string // who may own followed links, for the message
}

func (e *symlinkError) Error() string {
	return fmt.Sprintf("%s is a symlink %s; refusing to follow it (only symlinks owned by %s in directories only %s can write are followed; point the spec at the real path)",
		e.link, e.why, e.trusted, e.trusted)
}

func (e *symlinkError) Unwrap() error { return ErrSymlink }

// checkLink returns an error when the symlink named link, whose stat is
// st, may not be followed out of the directory whose stat is dir.
func checkLink(link string, st, dir *unix.Stat_t) error {
	euid := uint32(os.Geteuid())
	trusted := func(uid uint32) bool { return uid == 0 || uid == euid }
	why := ""
	switch {
	case !trusted(st.Uid):
		why = fmt.Sprintf("owned by uid %d", st.Uid)
	case !trusted(dir.Uid):
		why = fmt.Sprintf("in a directory owned by uid %d", dir.Uid)
	case dir.Mode&0o022 != 0:
		why = fmt.Sprintf("in a directory writable by group or others (mode %#o)", dir.Mode&0o7777)
	default:
		return nil
	}
	who := "root"
	if euid != 0 {
		who = fmt.Sprintf("root or uid %d", euid)
	}
	return &symlinkError{link: link, why: why, trusted: who}
}

// walkDir opens the directory at path as an O_PATH descriptor, refusing
// symlinks that checkLink refuses. With mkdir, missing components are
// created with perm (less the umask), as os.MkdirAll does. Errors name
// the component that failed.
func walkDir(path string, mkdir bool, perm fs.FileMode) (int, error) {
	at := "."
	if strings.HasPrefix(path, "/") {
		at = "/"
	}
	fd, err := unix.Open(at, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("%s: %w", at, err)
	}
	rest, links := path, 0
	for {
		rest = strings.TrimLeft(rest, "/")
		if rest == "" {
			return fd, nil
		}
		name := rest
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			name, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		if name == "." {
			continue
		}
		comp := filepath.Join(at, name)
		// O_DIRECTORY, so an automount point is mounted before it is
		// entered; a symlink fails it with ENOTDIR and is looked at below.
		const dirFlags = unix.O_PATH | unix.O_NOFOLLOW | unix.O_DIRECTORY | unix.O_CLOEXEC
		next, err := unix.Openat(fd, name, dirFlags, 0)
		if errors.Is(err, unix.ENOENT) && mkdir && name != ".." {
			// EEXIST: another process made it in between; the open decides.
			if err = unix.Mkdirat(fd, name, uint32(perm.Perm())); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = unix.Openat(fd, name, dirFlags, 0)
			}
		}
		if err == nil {
			unix.Close(fd)
			fd, at = next, comp
			continue
		}
		if !errors.Is(err, unix.ENOTDIR) {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", comp, err)
		}
		var st unix.Stat_t
		next, err = unix.Openat(fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == nil {
			if err = unix.Fstat(next, &st); err != nil {
				unix.Close(next)
			} else if st.Mode&unix.S_IFMT != unix.S_IFLNK {
				unix.Close(next)
				err = unix.ENOTDIR
			}
		}
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("%s: %w", comp, err)
		}

		target, err := followLink(fd, next, comp, &st, &links)
		unix.Close(next)
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		// A root process's /proc/PID/root (a server's root seen from here)
		// is the kernel's link: its text ("/") does not say where it
		// leads, and no user can make one. Let the kernel follow that
		// one; other procfs links (fd/N, cwd) are refused or read as text.
		if name == "root" && onProc(fd) && ownedByRoot(fd) {
			next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			unix.Close(fd)
			if err != nil {
				return -1, fmt.Errorf("%s: %w", comp, err)
			}
			fd, at = next, comp
			continue
		}
		// The target's components are walked like the rest, from the
		// link's directory or, for an absolute target, from "/".
		if strings.HasPrefix(target, "/") {
			unix.Close(fd)
			if fd, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return -1, fmt.Errorf("/: %w", err)
			}
			at = "/"
		}
		rest = target + "/" + rest
	}
}

// ownedByRoot reports whether the /proc/PID directory open as fd is a
// process of root's: owned by root, and its real, effective, saved and
// filesystem uids all 0 (a process of another user's that made itself
// undumpable is root-owned too, but not root's).
func ownedByRoot(fd int) bool {
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Uid != 0 {
		return false
	}
	sfd, err := unix.Openat(fd, "status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(sfd)
	buf := make([]byte, 4096)
	n, _ := unix.Read(sfd, buf)
	for _, line := range strings.Split(string(buf[:max(n, 0)]), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			f := strings.Fields(rest)
			return len(f) == 4 && f[0] == "0" && f[1] == "0" && f[2] == "0" && f[3] == "0"
		}
	}
	return false
}

// onProc reports whether the directory open as fd is on procfs.
func onProc(fd int) bool {
	var fs unix.Statfs_t
	return unix.Fstatfs(fd, &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC
}

// followLink returns the target of the symlink open as link (an O_PATH
// descriptor of the link itself, named comp, in directory dir) when the
// rule lets it be followed.
func followLink(dir, link int, comp string, st *unix.Stat_t, links *int) (string, error) {
	if *links++; *links > maxSymlinks {
		return "", fmt.Errorf("%s: %w", comp, unix.ELOOP)
	}
	var dst unix.Stat_t
	if err := unix.Fstat(dir, &dst); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Dir(comp), err)
	}
	if err := checkLink(comp, st, &dst); err != nil {
		return "", err
	}
	// Read through the descriptor that was checked, not by name: the
	// name could be another link by now.
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(link, "", buf)
	if err != nil {
		return "", fmt.Errorf("%s: %w", comp, err)
	}
	if n == len(buf) {
		return "", fmt.Errorf("%s: %w", comp, unix.ENAMETOOLONG)
	}
	return string(buf[:n]), nil
}

// openParent walks to the directory holding path's last component and
// returns an O_PATH descriptor of it and that component's name.
func openParent(path string) (dir int, base string, err error) {
	i := strings.LastIndexByte(path, '/')
	parent, base := path[:i+1], path[i+1:]
	if base == "" || base == "." || base == ".." {
		return -1, "", fmt.Errorf("not a file path")
	}
	if parent == "" {
		parent = "."
	}
	dir, err = walkDir(parent, false, 0)
	return dir, base, err
}

// MkdirAll creates the directory path and any missing parents with perm
// (less the umask), as os.MkdirAll does, but walks path under the symlink
// rule above: a planted symlink cannot make it create directories
// elsewhere.
func MkdirAll(path string, perm fs.FileMode) error {
	fd, err := walkDir(path, true, perm)
	if err != nil {
		return fmt.Errorf("create directory %s: %w", path, err)
	}
	unix.Close(fd)
	return nil
}

// DirExists reports whether path is a directory, walking it under the
// symlink rule above. A missing component is false, not an error; one
// that is not a directory is an error wrapping syscall.ENOTDIR.
func DirExists(path string) (bool, error) {
	fd, err := walkDir(path, false, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	unix.Close(fd)
	return true, nil
}
