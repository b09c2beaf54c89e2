// Package file manages one regular file on the host: its content, mode and
// owner. Writes are atomic and keep the previous version as a backup; a
// symlink where the file belongs is refused, never followed.
package file

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/openbis/provision/internal/engine"

	"github.com/openbis/provision/executors"
)

// Kind is the resource kind in addresses and state records.
const Kind = "file"

// DefaultMode is used when Config.Mode is zero.
const DefaultMode fs.FileMode = 0o644

// Config is the desired state of one file.
type Config struct {
	// Address is the resource address, e.g. "file.start_script".
	Address string
	// Path is the absolute path of the file.
	Path    string
	Content []byte
	// Mode holds permission bits only; zero means DefaultMode.
	Mode fs.FileMode
	// Owner and Group are names or numeric ids; "" means root.
	Owner, Group string
	// Sensitive keeps the content out of diffs, plans and records.
	Sensitive bool
	// SensitivePath keeps the path out of plans, progress and errors
	// (they say "(sensitive)"), and implies Sensitive. The address stays
	// as the spec names it, and the state record keeps the real path:
	// deleting the file later needs it, and the state file is root's
	// alone (0600).
	SensitivePath bool
}

// File is a managed file, or with absent set, one to delete.
type File struct {
	cfg    Config
	absent bool
}

var _ engine.Resource = (*File)(nil)

// New checks cfg and returns the resource. Owner and group names are
// resolved when planning, so a user created earlier in the run counts.
func New(cfg Config) (*File, error) {
	if cfg.Address == "" {
		return nil, errors.New("file: empty address")
	}
	if err := CheckPath(cfg.Path); err != nil {
		if cfg.SensitivePath {
			return nil, fmt.Errorf("%s: the path (sensitive) is not an absolute, clean path of a file", cfg.Address)
		}
		return nil, fmt.Errorf("%s: %w", cfg.Address, err)
	}
	if cfg.SensitivePath {
		cfg.Sensitive = true
	}
	if err := checkMode(cfg.Mode); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Address, err)
	}
	if cfg.Mode == 0 {
		cfg.Mode = DefaultMode
	}
	cfg.Content = bytes.Clone(cfg.Content)
	return &File{cfg: cfg}, nil
}

// ParseMode reads a mode as the spec writes it ("0644") and refuses what
// New would: anything but permission bits (no setuid, setgid or sticky).
func ParseMode(s string) (fs.FileMode, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || s == "" {
		return 0, fmt.Errorf("mode %q is not an octal number such as \"0644\"", s)
	}
	return fs.FileMode(m), checkMode(fs.FileMode(m))
}

func checkMode(m fs.FileMode) error {
	if m&^fs.ModePerm != 0 {
		return fmt.Errorf("mode %04o: only permission bits (0000-0777) are supported, no setuid, setgid or sticky bit", uint32(m))
	}
	return nil
}

// CheckPath refuses what New would: a path that is not absolute and
// clean, or the root directory.
func CheckPath(p string) error {
	if !filepath.IsAbs(p) {
		return fmt.Errorf("path %q is not absolute", p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("path %q is not clean (want %q)", p, filepath.Clean(p))
	}
	if p == "/" {
		return fmt.Errorf("path %q is not a file", p)
	}
	return nil
}

// record is the state file's data for a file.
// The path is kept in clear even when it is sensitive: deleting the file
// needs it, and the state file is readable by root only.
type record struct {
	Path          string `json:"path"`
	Sensitive     bool   `json:"sensitive,omitempty"`
	SensitivePath bool   `json:"sensitive_path,omitempty"`
}

// FromRecord builds a resource that deletes the file a previous apply
// created, once it has left the spec.
func FromRecord(rec engine.Record) (engine.Resource, error) {
	if rec.Kind != Kind {
		return nil, fmt.Errorf("%s: record of kind %q is not a file", rec.Address, rec.Kind)
	}
	var r record
	if err := json.Unmarshal(rec.Data, &r); err != nil {
		return nil, fmt.Errorf("%s: decode record: %w", rec.Address, err)
	}
	if err := CheckPath(r.Path); err != nil {
		return nil, fmt.Errorf("%s: record: %w", rec.Address, err)
	}
	cfg := Config{Address: rec.Address, Path: r.Path, Sensitive: r.Sensitive || r.SensitivePath, SensitivePath: r.SensitivePath}
	return &File{cfg: cfg, absent: true}, nil
}

// Address implements engine.Resource.
func (f *File) Address() string { return f.cfg.Address }

// Path is the managed path.
func (f *File) Path() string { return f.cfg.Path }

// Record implements engine.Resource. A file being deleted leaves nothing.
func (f *File) Record() *engine.Record {
	if f.absent {
		return nil
	}
	b, _ := json.Marshal(record{Path: f.cfg.Path, Sensitive: f.cfg.Sensitive, SensitivePath: f.cfg.SensitivePath})
	return &engine.Record{Address: f.cfg.Address, Kind: Kind, Data: b}
}

// applyData is what Apply takes from the plan: the ids the names resolved
// to, so Apply writes exactly what the plan showed.
type applyData struct {
	UID   int  `json:"uid"`
	GID   int  `json:"gid"`
	Mkdir bool `json:"mkdir,omitempty"`
}

// Plan implements engine.Resource.
func (f *File) Plan(ctx context.Context) (*engine.Change, error) {
	st, err := executors.ReadFile(f.cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.cfg.Address, f.redact(err))
	}
	ch := &engine.Change{Address: f.cfg.Address, Fingerprint: fingerprint(st)}
	if f.absent {
		if st.Exists {
			ch.Action = engine.Delete
			ch.Reasons = []string{"no longer in the spec"}
			f.describeContent(ch, st.Content, nil)
		}
		return ch, nil
	}

	uid, err := lookupUser(f.cfg.Owner)
	if err != nil {
		return nil, fmt.Errorf("%s: owner: %w", f.cfg.Address, f.redact(err))
	}
	gid, err := lookupGroup(f.cfg.Group)
	if err != nil {
		return nil, fmt.Errorf("%s: group: %w", f.cfg.Address, f.redact(err))
	}
	data := applyData{UID: uid, GID: gid}

	if !st.Exists {
		ch.Action = engine.Create
		dir := filepath.Dir(f.cfg.Path)
		switch ok, err := executors.DirExists(dir); {
		case err != nil:
			return nil, fmt.Errorf("%s: parent: %w", f.cfg.Address, f.redact(err))
		case !ok:
			data.Mkdir = true
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("parent directory %s missing, will be created (0755)", f.shown(dir)))
		}
		ch.Reasons = append(ch.Reasons, "file missing")
		ch.Fields = []engine.Field{
			{Name: "mode", New: modeString(f.cfg.Mode)},
			{Name: "owner", New: ownerString(f.cfg.Owner)},
			{Name: "group", New: ownerString(f.cfg.Group)},
		}
		f.describeContent(ch, nil, f.cfg.Content)
	} else {
		if !bytes.Equal(st.Content, f.cfg.Content) {
			ch.Reasons = append(ch.Reasons, "content differs")
			f.describeContent(ch, st.Content, f.cfg.Content)
		}
		if st.Mode != f.cfg.Mode {
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("mode %s → %s", modeString(st.Mode), modeString(f.cfg.Mode)))
			ch.Fields = append(ch.Fields, engine.Field{Name: "mode", Old: modeString(st.Mode), New: modeString(f.cfg.Mode)})
		}
		if st.UID != uid {
			old, new := userName(st.UID), ownerString(f.cfg.Owner)
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("owner %s → %s", old, new))
			ch.Fields = append(ch.Fields, engine.Field{Name: "owner", Old: old, New: new})
		}
		if st.GID != gid {
			old, new := groupName(st.GID), ownerString(f.cfg.Group)
			ch.Reasons = append(ch.Reasons, fmt.Sprintf("group %s → %s", old, new))
			ch.Fields = append(ch.Fields, engine.Field{Name: "group", Old: old, New: new})
		}
		if len(ch.Reasons) > 0 {
			ch.Action = engine.Update
		}
	}
	if ch.Action != engine.NoOp {
		ch.Data, _ = json.Marshal(data)
	}
	return ch, nil
}

// describeContent sets the diff, or a reason instead of one when the
// content must not or cannot be shown.
func (f *File) describeContent(ch *engine.Change, old, new []byte) {
	switch {
	case f.cfg.Sensitive:
		ch.Fields = append(ch.Fields, engine.Field{Name: "content", Old: sizeString(old), New: sizeString(new), Sensitive: true})
	case isBinary(old) || isBinary(new):
		ch.Fields = append(ch.Fields, engine.Field{Name: "content", Old: "binary, " + sizeString(old), New: "binary, " + sizeString(new)})
	default:
		ch.Diff = executors.UnifiedDiff(f.cfg.Path, old, new)
	}
}

// Apply implements engine.Resource. It re-reads the file and refuses
// when the host changed since the plan was made.
func (f *File) Apply(ctx context.Context, ch *engine.Change, out engine.Output) error {
	if ch == nil || ch.Action == engine.NoOp {
		return nil
	}
	st, err := executors.ReadFile(f.cfg.Path)
	if err != nil {
		return fmt.Errorf("%s: %w", f.cfg.Address, f.redact(err))
	}
	if fp := fingerprint(st); fp != ch.Fingerprint {
		return fmt.Errorf("%s: %s changed since it was planned; plan again", f.cfg.Address, f.shown(f.cfg.Path))
	}
	switch ch.Action {
	case engine.Delete:
		if !f.absent {
			return fmt.Errorf("%s: planned a delete of a file that is in the spec", f.cfg.Address)
		}
		if err := executors.RemoveFile(f.cfg.Path); err != nil {
			return fmt.Errorf("%s: %w", f.cfg.Address, f.redact(err))
		}
		out.Progress(f.cfg.Address, fmt.Sprintf("removed %s (backup %s)", f.shown(f.cfg.Path), f.shown(f.cfg.Path+executors.BackupSuffix)))
		return nil
	case engine.Create, engine.Update:
		if f.absent {
			return fmt.Errorf("%s: cannot %s a file that is to be deleted", f.cfg.Address, ch.Action.Verb())
		}
	default:
		return fmt.Errorf("%s: unsupported action %q", f.cfg.Address, ch.Action)
	}
	var data applyData
	if err := json.Unmarshal(ch.Data, &data); err != nil {
		return fmt.Errorf("%s: decode planned change: %w", f.cfg.Address, err)
	}
	if data.Mkdir {
		dir := filepath.Dir(f.cfg.Path)
		if err := executors.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("%s: %w", f.cfg.Address, f.redact(err))
		}
	}
	if err := executors.WriteFile(f.cfg.Path, f.cfg.Content, f.cfg.Mode, data.UID, data.GID); err != nil {
		return fmt.Errorf("%s: %w", f.cfg.Address, f.redact(err))
	}
	out.Progress(f.cfg.Address, fmt.Sprintf("wrote %s (%s, mode %s)", f.shown(f.cfg.Path), sizeString(f.cfg.Content), modeString(f.cfg.Mode)))
	return nil
}

// redacted stands for a sensitive path in plans, progress and errors.
const redacted = "(sensitive)"

// shown is p (the path or a name derived from it) as plans and progress
// print it.
func (f *File) shown(p string) string {
	if f.cfg.SensitivePath {
		return redacted
	}
	return p
}

// redact takes a sensitive path, and every directory above it, out of an
// error's text (the os package's errors name the path); the error still
// unwraps to the original.
func (f *File) redact(err error) error {
	if !f.cfg.SensitivePath || err == nil {
		return err
	}
	msg := err.Error()
	for p := f.cfg.Path; p != "/" && p != "."; p = filepath.Dir(p) {
		msg = strings.ReplaceAll(msg, p, redacted)
	}
	return redactedError{msg, err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }

// fingerprint identifies what was read: a hash, never the content itself.
func fingerprint(st executors.FileState) string {
	if !st.Exists {
		return executors.Fingerprint(false)
	}
	return executors.Fingerprint(true, sha256.Sum256(st.Content), st.Mode, st.UID, st.GID)
}

func lookupUser(s string) (int, error) {
	if s == "" || s == "root" {
		return 0, nil
	}
	if id, err := parseID(s); err == nil {
		return id, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(u.Uid)
}

func lookupGroup(s string) (int, error) {
	if s == "" || s == "root" {
		return 0, nil
	}
	if id, err := parseID(s); err == nil {
		return id, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(g.Gid)
}

func parseID(s string) (int, error) {
	n, err := strconv.ParseUint(s, 10, 31)
	return int(n), err
}

// userName and groupName name an observed id for a reason line, falling
// back to the number.
func userName(id int) string {
	if id == 0 {
		return "root"
	}
	if u, err := user.LookupId(strconv.Itoa(id)); err == nil {
		return u.Username
	}
	return strconv.Itoa(id)
}

func groupName(id int) string {
	if id == 0 {
		return "root"
	}
	if g, err := user.LookupGroupId(strconv.Itoa(id)); err == nil {
		return g.Name
	}
	return strconv.Itoa(id)
}

// ownerString shows a configured owner as the spec wrote it.
func ownerString(spec string) string {
	if spec == "" {
		return "root"
	}
	return spec
}

func modeString(m fs.FileMode) string { return fmt.Sprintf("%04o", uint32(m.Perm())) }

func sizeString(b []byte) string {
	if b == nil {
		return ""
	}
	return fmt.Sprintf("%d bytes", len(b))
}

func isBinary(b []byte) bool { return bytes.IndexByte(b, 0) >= 0 || !utf8.Valid(b) }

// Supersedes implements engine.Superseder: the file moved to another path.
func (f *File) Supersedes(old engine.Record) bool {
	var r record
	return json.Unmarshal(old.Data, &r) == nil && !executors.SameFile(r.Path, f.cfg.Path)
}
