package executors

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// BackupSuffix names the copy of a file's previous version kept next to it.
const BackupSuffix = ".provision-bak"

// tempPrefix marks temp files so a later write can remove ones a crash left.
const tempPrefix = ".provision-tmp-"

// FileState is what is on disk at a path.
type FileState struct {
	Exists  bool
	Content []byte
	Mode    fs.FileMode // permission bits only
	UID     int
	GID     int
}

// ErrSymlink is returned when a symlink sits where a managed file belongs:
// following it could write anywhere on the host.
var ErrSymlink = errors.New("is a symlink; refusing to follow it (remove it or point the spec at the real file)")

// ReadFile reads path without following a symlink at it, nor one in its
// directories that the rule in safepath.go refuses. A missing file, or a
// missing directory on the way, is a FileState that does not exist.
func ReadFile(path string) (FileState, error) {
	dir, base, err := openParent(path)
	if errors.Is(err, fs.ErrNotExist) {
		return FileState{}, nil
	}
	if err != nil {
		return FileState{}, fmt.Errorf("read %s: %w", path, err)
	}
	defer unix.Close(dir)
	// O_NONBLOCK: a FIFO planted at a managed path must not hang the plan;
	// the type check below refuses it.
	fd, err := unix.Openat(dir, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return FileState{}, nil
		}
		if errors.Is(err, unix.ELOOP) {
			return FileState{}, fmt.Errorf("read %s: %w", path, ErrSymlink)
		}
		return FileState{}, fmt.Errorf("read %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return FileState{}, fmt.Errorf("stat %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return FileState{}, fmt.Errorf("read %s: not a regular file (%s)", path, fi.Mode().Type())
	}
	content := make([]byte, fi.Size())
	if _, err := f.ReadAt(content, 0); err != nil && fi.Size() > 0 {
		return FileState{}, fmt.Errorf("read %s: %w", path, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return FileState{Exists: true, Content: content, Mode: fi.Mode().Perm(), UID: int(st.Uid), GID: int(st.Gid)}, nil
}

// WriteFile replaces path with content atomically: a temp file in the same
// directory, written, chmod/chowned and fsynced, then renamed over path, and
// the directory fsynced. A crash leaves either the old or the new file. The
// previous version, if any, stays as path+BackupSuffix. uid or gid of -1
// keeps the owner of the file being replaced (root for a new file). The
// directory is reached as ReadFile reaches it, and every step works
// through a descriptor of it, never by path.
func WriteFile(path string, content []byte, mode fs.FileMode, uid, gid int) error {
	return replace(path, content, mode, uid, gid, true)
}

// WriteFileNoBackup is WriteFile for files whose old version is worth
// nothing (a spec that `provision fmt` reformats).
func WriteFileNoBackup(path string, content []byte, mode fs.FileMode, uid, gid int) error {
	return replace(path, content, mode, uid, gid, false)
}

func replace(path string, content []byte, mode fs.FileMode, uid, gid int, keepBackup bool) error {
	d, base, err := openDirFile(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	dir := int(d.Fd())
	old, err := lstatAt(dir, base)
	switch {
	case err == nil && old.Mode&unix.S_IFMT == unix.S_IFLNK:
		return fmt.Errorf("write %s: %w", path, ErrSymlink)
	case err == nil && old.Mode&unix.S_IFMT != unix.S_IFREG:
		return fmt.Errorf("write %s: not a regular file (%s)", path, fileType(old.Mode))
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write %s: %w", path, err)
	case err != nil:
		old = nil
	}
	if old != nil {
		if uid < 0 {
			uid = int(old.Uid)
		}
		if gid < 0 {
			gid = int(old.Gid)
		}
	}
	removeStaleTemps(d, base)

	tmp, tmpName, err := createTemp(dir, base)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			unix.Unlinkat(dir, tmpName, 0)
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// chmod after chown: chown clears setuid bits.
	if uid >= 0 || gid >= 0 {
		if err := tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("write %s: set owner %d:%d: %w", path, uid, gid, err)
		}
	}
	if err := tmp.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: set mode %#o: %w", path, mode, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	var bak *pendingBackup
	if old != nil && keepBackup {
		if bak, err = linkBackup(dir, path, base, old); err != nil {
			return err
		}
	}
	if err := unix.Renameat(dir, tmpName, dir, base); err != nil {
		bak.drop()
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	// The backup is never more readable than the new version: a file
	// tightened to 0600 must not leave its old content at 0644.
	if bak != nil {
		if err := bak.keep(fs.FileMode(old.Mode).Perm() & mode.Perm()); err != nil {
			return err
		}
	}
	return syncDir(d)
}

// openDirFile walks to path's directory and opens it for reading, which
// listing it and fsyncing it need; it returns the directory and the name
// of path in it.
func openDirFile(path string) (*os.File, string, error) {
	p, base, err := openParent(path)
	if err != nil {
		return nil, "", err
	}
	defer unix.Close(p)
	fd, err := unix.Openat(p, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open directory %s: %w", filepath.Dir(path), err)
	}
	return os.NewFile(uintptr(fd), filepath.Dir(path)), base, nil
}

// lstatAt stats name in dir without following a symlink at it.
func lstatAt(dir int, name string) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	return &st, nil
}

// createTemp creates a new temp file for base in dir, readable by its
// owner only until its mode is set, as os.CreateTemp does.
func createTemp(dir int, base string) (*os.File, string, error) {
	for range 10000 {
		name := tempPrefix + base + "-" + strconv.FormatUint(uint64(rand.Uint32()), 10)
		fd, err := unix.Openat(dir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("create temp file: %w", err)
		}
		return os.NewFile(uintptr(fd), name), name, nil
	}
	return nil, "", fmt.Errorf("create temp file: %w", unix.EEXIST)
}

// pendingBackup is a hard link to a file's previous version, made before
// the file is replaced or removed: it costs no copy and keeps the old inode
// alive. keep gives it its final mode and name.
type pendingBackup struct {
	dir            int // the directory, open; owned by the caller
	path, base     string
	tmp            string
	oldDev, oldIno uint64 // the inode that is being backed up
}

func linkBackup(dir int, path, base string, old *unix.Stat_t) (*pendingBackup, error) {
	b := &pendingBackup{dir: dir, path: path, base: base, tmp: tempPrefix + base + BackupSuffix, oldDev: old.Dev, oldIno: old.Ino}
	unix.Unlinkat(dir, b.tmp, 0)
	// Flags 0: a symlink swapped in at base is linked itself, not its
	// target, and keep then refuses it.
	if err := unix.Linkat(dir, base, dir, b.tmp, 0); err != nil {
		return nil, fmt.Errorf("back up %s: %w", path, err)
	}
	return b, nil
}

// keep chmods the previous version, now reachable through the backup
// only, to perm and renames it to path+BackupSuffix.
func (b *pendingBackup) keep(perm fs.FileMode) error {
	if err := b.chmod(perm); err != nil {
		b.drop()
		return fmt.Errorf("back up %s: %w", b.path, err)
	}
	if err := unix.Renameat(b.dir, b.tmp, b.dir, b.base+BackupSuffix); err != nil {
		b.drop()
		return fmt.Errorf("back up %s: %w", b.path, err)
	}
	// When a crash left the backup as a link to the same inode, rename(2)
	// does nothing and the temp name stays: remove it.
	b.drop()
	return nil
}

// chmod sets the backup's mode through a descriptor, after checking it is
// the inode that was replaced: in a directory its user can write, the
// name may have been swapped for a symlink or another file meanwhile.
func (b *pendingBackup) chmod(perm fs.FileMode) error {
	fd, err := unix.Openat(b.dir, b.tmp, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Dev != b.oldDev || st.Ino != b.oldIno {
		return fmt.Errorf("%s was replaced by another file while it was being backed up", b.path)
	}
	return unix.Fchmod(fd, uint32(perm.Perm()))
}

func (b *pendingBackup) drop() {
	if b != nil {
		unix.Unlinkat(b.dir, b.tmp, 0)
	}
}

// RemoveFile deletes path, keeping its last version as a backup readable
// by its owner only: it may be a secret that was deleted on purpose.
// The directory is reached as ReadFile reaches it.
func RemoveFile(path string) error {
	d, base, err := openDirFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	defer d.Close()
	dir := int(d.Fd())
	st, err := lstatAt(dir, base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		return fmt.Errorf("remove %s: %w", path, ErrSymlink)
	}
	bak, err := linkBackup(dir, path, base, st)
	if err != nil {
		return err
	}
	if err := unix.Unlinkat(dir, base, 0); err != nil {
		bak.drop()
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := bak.keep(fs.FileMode(st.Mode).Perm() & 0o600); err != nil {
		return err
	}
	return syncDir(d)
}

// removeStaleTemps deletes temp files an interrupted write of base left
// in d: its temp files and its pending backup.
func removeStaleTemps(d *os.File, base string) {
	names, _ := d.Readdirnames(-1)
	for _, n := range names {
		if strings.HasPrefix(n, tempPrefix+base+"-") || n == tempPrefix+base+BackupSuffix {
			unix.Unlinkat(int(d.Fd()), n, 0)
		}
	}
}

func syncDir(d *os.File) error {
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", d.Name(), err)
	}
	return nil
}

// fileType is the type bits of a stat mode as fs.FileMode prints them.
func fileType(mode uint32) fs.FileMode {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return fs.ModeDir
	case unix.S_IFLNK:
		return fs.ModeSymlink
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	}
	return fs.ModeIrregular
}

// IsTemp reports whether name is a temp file left by WriteFile.
func IsTemp(name string) bool { return strings.HasPrefix(filepath.Base(name), tempPrefix) }
