package executors

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// ReadFile reads path without following a symlink at it.
func ReadFile(path string) (FileState, error) {
	// O_NONBLOCK: a FIFO planted at a managed path must not hang the plan;
	// the type check below refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return FileState{}, nil
		}
		if errors.Is(err, syscall.ELOOP) {
			return FileState{}, fmt.Errorf("read %s: %w", path, ErrSymlink)
		}
		return FileState{}, fmt.Errorf("read %s: %w", path, err)
	}
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
// keeps the owner of the file being replaced (root for a new file).
func WriteFile(path string, content []byte, mode fs.FileMode, uid, gid int) error {
	return replace(path, content, mode, uid, gid, true)
}

// WriteFileNoBackup is WriteFile for files whose old version is worth
// nothing (a spec that `provision fmt` reformats).
func WriteFileNoBackup(path string, content []byte, mode fs.FileMode, uid, gid int) error {
	return replace(path, content, mode, uid, gid, false)
}

func replace(path string, content []byte, mode fs.FileMode, uid, gid int, keepBackup bool) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	old, err := os.Lstat(path)
	switch {
	case err == nil && old.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("write %s: %w", path, ErrSymlink)
	case err == nil && !old.Mode().IsRegular():
		return fmt.Errorf("write %s: not a regular file (%s)", path, old.Mode().Type())
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err == nil {
		st := old.Sys().(*syscall.Stat_t)
		if uid < 0 {
			uid = int(st.Uid)
		}
		if gid < 0 {
			gid = int(st.Gid)
		}
	}
	removeStaleTemps(dir, base)

	tmp, err := os.CreateTemp(dir, tempPrefix+base+"-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmpName)
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
		if bak, err = linkBackup(path); err != nil {
			return err
		}
	}
	if err := os.Rename(tmpName, path); err != nil {
		bak.drop()
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	// The backup is never more readable than the new version: a file
	// tightened to 0600 must not leave its old content at 0644.
	if bak != nil {
		if err := bak.keep(old.Mode().Perm() & mode.Perm()); err != nil {
			return err
		}
	}
	return syncDir(dir)
}

// pendingBackup is a hard link to a file's previous version, made before
// the file is replaced or removed: it costs no copy and keeps the old inode
// alive. keep gives it its final mode and name.
type pendingBackup struct{ path, tmp string }

func linkBackup(path string) (*pendingBackup, error) {
	b := &pendingBackup{path: path, tmp: filepath.Join(filepath.Dir(path), tempPrefix+filepath.Base(path)+BackupSuffix)}
	os.Remove(b.tmp)
	if err := os.Link(path, b.tmp); err != nil {
		return nil, fmt.Errorf("back up %s: %w", path, err)
	}
	return b, nil
}

// keep chmods the previous version, now reachable through the backup
// only, to perm and renames it to path+BackupSuffix.
func (b *pendingBackup) keep(perm fs.FileMode) error {
	if err := os.Chmod(b.tmp, perm); err != nil {
		b.drop()
		return fmt.Errorf("back up %s: %w", b.path, err)
	}
	if err := os.Rename(b.tmp, b.path+BackupSuffix); err != nil {
		b.drop()
		return fmt.Errorf("back up %s: %w", b.path, err)
	}
	// When a crash left the backup as a link to the same inode, rename(2)
	// does nothing and the temp name stays: remove it.
	b.drop()
	return nil
}

func (b *pendingBackup) drop() {
	if b != nil {
		os.Remove(b.tmp)
	}
}

// RemoveFile deletes path, keeping its last version as a backup readable
// by its owner only: it may be a secret that was deleted on purpose.
func RemoveFile(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("remove %s: %w", path, ErrSymlink)
	}
	bak, err := linkBackup(path)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		bak.drop()
		return fmt.Errorf("remove %s: %w", path, err)
	}
	if err := bak.keep(fi.Mode().Perm() & 0o600); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// removeStaleTemps deletes temp files an interrupted write of base left.
func removeStaleTemps(dir, base string) {
	names, _ := filepath.Glob(filepath.Join(dir, tempPrefix+base+"*"))
	for _, n := range names {
		os.Remove(n)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// IsTemp reports whether name is a temp file left by WriteFile.
func IsTemp(name string) bool { return strings.HasPrefix(filepath.Base(name), tempPrefix) }
