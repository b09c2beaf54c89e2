package engine

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openbis/provision/executors"
)

// fake is a resource whose host state is a string in memory.
type fake struct {
	addr   string
	have   *string // nil: absent
	want   string
	absent bool // desired: deleted
	log    *[]string
	fail   error
}

func (f *fake) Address() string { return f.addr }

func (f *fake) Plan(context.Context) (*Change, error) {
	if f.fail != nil {
		return nil, f.fail
	}
	ch := &Change{Address: f.addr}
	switch {
	case f.absent && f.have != nil:
		ch.Action = Delete
	case f.absent:
	case f.have == nil:
		ch.Action = Create
		ch.Fields = []Field{{Name: "value", New: f.want}}
	case *f.have != f.want:
		ch.Action = Update
		ch.Fields = []Field{{Name: "value", Old: *f.have, New: f.want, Sensitive: strings.HasPrefix(f.addr, "secret")}}
	}
	if f.have != nil {
		ch.Fingerprint = executors.Fingerprint(*f.have)
	}
	return ch, nil
}

func (f *fake) Apply(_ context.Context, ch *Change, _ Output) error {
	*f.log = append(*f.log, "apply "+f.addr)
	if f.absent {
		f.have = nil
		return nil
	}
	v := f.want
	f.have = &v
	return nil
}

func (f *fake) Record() *Record {
	b, _ := json.Marshal(f.want)
	return &Record{Kind: "fake", Data: b}
}

type fakeRestarter struct{ *fake }

func (f fakeRestarter) Restart(context.Context, *Change, Output) error {
	*f.log = append(*f.log, "restart "+f.addr)
	return nil
}

func str(s string) *string { return &s }

func newState(t *testing.T) *State {
	st, err := LoadState(filepath.Join(t.TempDir(), "state.json"), "h")
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPlanApplyOrderAndRestartOnce(t *testing.T) {
	var log []string
	script := &fake{addr: "file.start_script", want: "v2", have: str("v1"), log: &log}
	image := &fake{addr: "docker_image.jupyterhub", want: "b", log: &log}
	unit := fakeRestarter{&fake{addr: "systemd_unit.jupyterhub", want: "u", have: str("u"), log: &log}}
	nodes := []Node{{Resource: image}, {Resource: script}, {Resource: unit, Deps: []string{"file.start_script", "docker_image.jupyterhub"}}}
	st := newState(t)
	p, err := Make(context.Background(), "h", nodes, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Changes[2].TriggeredBy; strings.Join(got, ",") != "file.start_script,docker_image.jupyterhub" {
		t.Fatalf("unit triggered by %v", got)
	}
	if err := p.Apply(context.Background(), st, Discard); err != nil {
		t.Fatal(err)
	}
	want := "apply docker_image.jupyterhub,apply file.start_script,restart systemd_unit.jupyterhub"
	if got := strings.Join(log, ","); got != want {
		t.Errorf("applied %s, want %s", got, want)
	}
	p, _ = Make(context.Background(), "h", nodes, st, nil)
	if p.Pending() {
		t.Errorf("second plan not converged: %+v", p.Changes)
	}
}

func TestStateDeletesOnlyRecorded(t *testing.T) {
	var log []string
	st := newState(t)
	keep := &fake{addr: "file.a", want: "x", log: &log}
	gone := &fake{addr: "file.b", want: "y", log: &log}
	p, _ := Make(context.Background(), "h", []Node{{Resource: keep}, {Resource: gone}}, st, nil)
	if err := p.Apply(context.Background(), st, Discard); err != nil {
		t.Fatal(err)
	}
	st2, err := LoadState(st.path, "h")
	if err != nil || len(st2.Hosts["h"]) != 2 {
		t.Fatalf("state after apply: %+v, %v", st2, err)
	}
	fi, _ := os.Stat(st.path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state mode %o", fi.Mode().Perm())
	}
	deleters := map[string]Deleter{"fake": func(r Record) (Resource, error) {
		return &fake{addr: r.Address, have: gone.have, absent: true, log: &log}, nil
	}}
	// file.b left the spec: planned as a delete; file.c was never recorded.
	p, err = Make(context.Background(), "h", []Node{{Resource: keep}}, st2, deleters)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Changes) != 2 || p.Changes[1].Action != Delete || p.Changes[1].Address != "file.b" {
		t.Fatalf("changes = %+v", p.Changes)
	}
	if err := p.Apply(context.Background(), st2, Discard); err != nil {
		t.Fatal(err)
	}
	if _, ok := st2.Hosts["h"]["file.b"]; ok {
		t.Error("deleted resource still in state")
	}
}

func TestMakeCollectsAllErrors(t *testing.T) {
	nodes := []Node{
		{Resource: &fake{addr: "a", fail: errors.New("dockerd not running")}},
		{Resource: &fake{addr: "b", fail: errors.New("firewalld not running")}},
	}
	_, err := Make(context.Background(), "h", nodes, newState(t), nil)
	if err == nil || !strings.Contains(err.Error(), "a: dockerd") || !strings.Contains(err.Error(), "b: firewalld") {
		t.Errorf("err = %v", err)
	}
}

func TestSavedPlanStaleness(t *testing.T) {
	var log []string
	r := &fake{addr: "file.a", want: "x", have: str("w"), log: &log}
	p, _ := Make(context.Background(), "h", []Node{{Resource: r}}, newState(t), nil)
	path := filepath.Join(t.TempDir(), "plan.out")
	if err := p.Save(path, map[string]string{"spec": "s"}, publicForTest); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if fi, err := os.Stat(path); !IsSaved(b) || err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved plan (%v): %s", err, b)
	}
	sp, err := ReadSaved(b)
	var got map[string]string
	if err != nil || json.Unmarshal(sp.Source, &got) != nil || got["spec"] != "s" {
		t.Fatalf("read saved plan: %v, source %s", err, sp.Source)
	}
	fresh, _ := Make(context.Background(), "h", []Node{{Resource: r}}, newState(t), nil)
	if stale := sp.Stale(fresh); stale != nil {
		t.Errorf("unchanged host reported stale: %v", stale)
	}
	*r.have = "edited by hand"
	fresh, _ = Make(context.Background(), "h", []Node{{Resource: r}}, newState(t), nil)
	if stale := sp.Stale(fresh); len(stale) != 1 || !strings.Contains(stale[0], "file.a: changed on the host") {
		t.Errorf("stale = %v", stale)
	}
}

func TestLockWaitsAndTimesOut(t *testing.T) {
	path := filepath.Join(t.TempDir(), "provision.lock")
	l1, err := AcquireLock(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var waited string
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := AcquireLock(ctx, path, func(h string) { waited = h }); err == nil || !strings.Contains(err.Error(), "another provision") {
		t.Fatalf("second lock: %v", err)
	}
	if waited != strconv.Itoa(os.Getpid()) {
		t.Errorf("waiting message named holder %q", waited)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		l2, err := AcquireLock(context.Background(), path, nil)
		if err != nil {
			t.Error(err)
			return
		}
		l2.Release()
	}()
	time.Sleep(150 * time.Millisecond)
	l1.Release()
	wg.Wait()
}

// TestDeferredBehindStoppedDaemon: a resource that cannot be read because
// the daemon it needs is stopped is planned again during apply, after the
// service resource started the daemon.
func TestDeferredBehindStoppedDaemon(t *testing.T) {
	var log []string
	daemon := &fake{addr: "systemd_service.docker", want: "running", have: str("stopped"), log: &log}
	image := &gated{fake: &fake{addr: "docker_image.jupyterhub", want: "id", log: &log}, daemon: daemon}
	nodes := []Node{{Resource: daemon}, {Resource: image, Deps: []string{"systemd_service.docker"}}}
	st := newState(t)
	p, err := Make(context.Background(), "h", nodes, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ch := p.Changes[1]; !ch.Deferred || !strings.Contains(ch.Reasons[0], "daemon down") {
		t.Fatalf("image change = %+v", ch)
	}
	if err := p.Apply(context.Background(), st, Discard); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(log, ","); got != "apply systemd_service.docker,apply docker_image.jupyterhub" {
		t.Errorf("applied %s", got)
	}
	// Without a pending upstream change the read error is an error.
	*daemon.have = "stopped"
	daemon.want = "stopped"
	if _, err := Make(context.Background(), "h", nodes, st, nil); err == nil || !strings.Contains(err.Error(), "daemon down") {
		t.Errorf("err = %v", err)
	}
}

// gated fails to read while its daemon is not running.
type gated struct {
	*fake
	daemon *fake
}

func (g *gated) Plan(ctx context.Context) (*Change, error) {
	if g.daemon.have == nil || *g.daemon.have != "running" {
		return nil, errors.New("daemon down")
	}
	return g.fake.Plan(ctx)
}

func TestStateIsPerHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	a, _ := LoadState(path, "hub.example.org")
	a.Remember(Record{Address: "file.a", Kind: "file"})
	if err := a.Save(); err != nil {
		t.Fatal(err)
	}
	b, err := LoadState(path, "openbis.example.org")
	if err != nil {
		t.Fatal(err)
	}
	if o := b.Orphans(nil); len(o) != 0 {
		t.Errorf("other host's resources planned for deletion: %v", o)
	}
	b.Remember(Record{Address: "file.b", Kind: "file"})
	b.Save()
	a, _ = LoadState(path, "hub.example.org")
	if o := a.Orphans(nil); len(o) != 1 || o[0].Address != "file.a" {
		t.Errorf("orphans = %v", o)
	}
}

// TestLockRefusesSharedDirectory: a lock in a directory others can write
// (world-writable /run/lock) could be held forever by anyone.
func TestLockRefusesSharedDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o1777)
	if _, err := AcquireLock(context.Background(), filepath.Join(dir, "apply.lock"), nil); err == nil || !strings.Contains(err.Error(), "writable by others") {
		t.Errorf("lock in a world-writable directory: %v", err)
	}
}

// publicForTest stands in for render.Public (render imports engine).
func publicForTest(ch *Change) *Change {
	pub := *ch
	pub.Fields = nil
	for _, f := range ch.Fields {
		if f.Sensitive {
			f.Old, f.New = "(sensitive)", "(sensitive)"
		}
		pub.Fields = append(pub.Fields, f)
	}
	return &pub
}

// TestSavedPlanKeepsShownChanges: a saved plan holds each change as it was
// shown (fields, reasons, warnings; no executor data, no sensitive value
// in clear) and the plan's warnings, so show needs no host.
func TestSavedPlanKeepsShownChanges(t *testing.T) {
	var log []string
	secret := &fake{addr: "secret.token", want: "hunter2", have: str("hunter1"), log: &log}
	plain := &fake{addr: "file.a", want: "x", log: &log}
	p, err := Make(context.Background(), "h", []Node{{Resource: secret}, {Resource: plain}}, newState(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Changes[0].Data = json.RawMessage(`{"private":"hunter2"}`)
	p.Warnings = []string{"certificate expires in 10 days"}
	path := filepath.Join(t.TempDir(), "plan.out")
	if err := p.Save(path, map[string]string{"spec": "s"}, publicForTest); err != nil {
		t.Fatal(err)
	}
	if string(p.Changes[0].Data) == "" || p.Changes[0].Fields[0].New != "hunter2" {
		t.Error("Save modified the plan it saved")
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "hunter") || strings.Contains(string(b), "private") {
		t.Errorf("saved plan holds a secret or executor data:\n%s", b)
	}
	sp, err := ReadSaved(b)
	if err != nil {
		t.Fatal(err)
	}
	shown := sp.Plan()
	if shown.Host != "h" || len(shown.Warnings) != 1 || len(shown.Changes) != 2 {
		t.Fatalf("shown plan = %+v", shown)
	}
	if f := shown.Changes[0].Fields[0]; f.New != "(sensitive)" || !f.Sensitive || shown.Changes[0].Action != Update {
		t.Errorf("secret change = %+v", shown.Changes[0])
	}
	if f := shown.Changes[1].Fields[0]; f.New != "x" || shown.Changes[1].Action != Create {
		t.Errorf("plain change = %+v", shown.Changes[1])
	}
	if s := shown.Summary(); s.Create != 1 || s.Update != 1 {
		t.Errorf("summary = %+v", s)
	}
	// Plans saved before changes were kept whole still read.
	old := `{"format":"provision-plan/v1","source":{},"host":"h","changes":[{"address":"file.a","action":"+","fingerprint":""}]}`
	if sp, err := ReadSaved([]byte(old)); err != nil || sp.StateChanged(p) != nil || sp.Stale(p) == nil {
		t.Errorf("old plan: %v", err)
	}
}

// TestSavedPlanStateChanged: a saved plan applied with another state file,
// or after the host's records in it changed, is refused for that reason.
func TestSavedPlanStateChanged(t *testing.T) {
	var log []string
	r := &fake{addr: "file.a", want: "x", log: &log}
	dir := t.TempDir()
	load := func(path, host string) *State {
		st, err := LoadState(path, host)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	statePath := filepath.Join(dir, "state.json")
	other := load(statePath, "other")
	other.Remember(Record{Address: "file.o", Kind: "fake"})
	other.Save()
	p, _ := Make(context.Background(), "h", []Node{{Resource: r}}, load(statePath, "h"), nil)
	planPath := filepath.Join(dir, "plan.out")
	if err := p.Save(planPath, nil, publicForTest); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(planPath)
	sp, _ := ReadSaved(b)

	for _, tt := range []struct {
		name  string
		state func() *State
		want  string // "" = unchanged
	}{
		{"same file", func() *State { return load(statePath, "h") }, ""},
		{"relative spelling of the same file", func() *State {
			wd, _ := os.Getwd()
			rel, _ := filepath.Rel(wd, statePath)
			return load(rel, "h")
		}, ""},
		{"another host's records changed", func() *State {
			st := load(statePath, "other")
			st.Remember(Record{Address: "file.p", Kind: "fake"})
			st.Save()
			return load(statePath, "h")
		}, ""},
		{"another file", func() *State { return load(filepath.Join(dir, "elsewhere.json"), "h") }, "made with --state " + statePath},
		{"records changed", func() *State {
			st := load(statePath, "h")
			st.Remember(Record{Address: "file.b", Kind: "fake"})
			st.Save()
			return load(statePath, "h")
		}, "records of h changed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fresh, err := Make(context.Background(), "h", []Node{{Resource: r}}, tt.state(), map[string]Deleter{"fake": func(rec Record) (Resource, error) {
				return &fake{addr: rec.Address, absent: true, log: &log}, nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(sp.StateChanged(fresh), "\n")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("StateChanged = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUnreachableDaemonIsOneError: resources behind a daemon that does not
// answer fail as one error naming the daemon, its address and the option;
// the probe runs only after a failed read, once; a daemon that a pending
// change starts still defers (TestDeferredBehindStoppedDaemon).
func TestUnreachableDaemonIsOneError(t *testing.T) {
	var log []string
	down := errors.New("dial unix /run/docker.sock: connect: no such file or directory")
	for _, tt := range []struct {
		name    string
		probe   error
		orphan  bool
		want    []string
		notWant []string
		probes  int
	}{
		{"daemon down", down, true, []string{
			"cannot reach the Docker daemon at unix:///run/docker.sock (give another address with --docker-host): dial unix /run/docker.sock: connect: no such file or directory; not read: docker_image.a, docker_container.a, docker_container.old",
			"file.c: permission denied",
		}, []string{"docker_image.a: read", "docker_container.a: read"}, 1},
		{"daemon answers: the resources' own errors, the same message once", nil, false, []string{
			"docker_image.a, docker_container.a: read failed",
		}, []string{"cannot reach"}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			probes := 0
			d := &Daemon{Name: "the Docker daemon", Address: "unix:///run/docker.sock", Option: "--docker-host", Kinds: []string{"docker"},
				Probe: func(context.Context) error { probes++; return tt.probe }}
			failing := errors.New("read failed")
			nodes := []Node{
				{Resource: &fake{addr: "docker_image.a", fail: failing}, Daemons: []*Daemon{d}},
				{Resource: &fake{addr: "docker_container.a", fail: failing}, Daemons: []*Daemon{d}},
				{Resource: &fake{addr: "file.b", want: "x", log: &log}},
			}
			if tt.orphan {
				nodes = append(nodes, Node{Resource: &fake{addr: "file.c", fail: errors.New("permission denied")}})
			}
			st := newState(t)
			st.Remember(Record{Address: "docker_container.old", Kind: "docker"})
			deleters := map[string]Deleter{"docker": func(rec Record) (Resource, error) {
				return &fake{addr: rec.Address, absent: true, fail: failing}, nil
			}}
			if !tt.orphan {
				st.Forget("docker_container.old")
			}
			_, err := Make(context.Background(), "h", nodes, st, deleters)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(err.Error(), w) {
					t.Errorf("error has %q:\n%v", w, err)
				}
			}
			if n := strings.Count(err.Error(), "\n") + 1; n != len(tt.want) {
				t.Errorf("%d lines, want %d:\n%v", n, len(tt.want), err)
			}
			if probes != tt.probes {
				t.Errorf("probed %d times, want %d", probes, tt.probes)
			}
			var ue *UnreachableError
			if errors.As(err, &ue) != (tt.probe != nil) {
				t.Errorf("UnreachableError: %v", ue)
			}
		})
	}

	// A working host never probes; a stopped daemon that a pending change
	// starts defers instead.
	probes := 0
	d := &Daemon{Name: "the Docker daemon", Probe: func(context.Context) error { probes++; return down }}
	daemon := &fake{addr: "systemd_service.docker", want: "running", have: str("stopped"), log: &log}
	image := &gated{fake: &fake{addr: "docker_image.jupyterhub", want: "id", log: &log}, daemon: daemon}
	p, err := Make(context.Background(), "h", []Node{{Resource: daemon}, {Resource: image, Deps: []string{"systemd_service.docker"}, Daemons: []*Daemon{d}}}, newState(t), nil)
	if err != nil || !p.Changes[1].Deferred || probes != 0 {
		t.Errorf("deferred: %v, %+v, %d probes", err, p, probes)
	}
}

// moving is a fake whose records name its want (a file's path, a rule's
// zone): a record with another want is another object.
type moving struct{ *fake }

func (m moving) Supersedes(old Record) bool {
	var was string
	json.Unmarshal(old.Data, &was)
	return was != m.want
}

// TestSupersededDeletedFirst: a resource whose recorded object is another
// (a rule moved to another zone) deletes that one first, and the state
// then records the new one.
func TestSupersededDeletedFirst(t *testing.T) {
	var log []string
	st := newState(t)
	old := &fake{addr: "firewalld_rich_rule.hub_443", want: "public", log: &log}
	p, _ := Make(context.Background(), "h", []Node{{Resource: old}}, st, nil)
	if err := p.Apply(context.Background(), st, Discard); err != nil {
		t.Fatal(err)
	}
	deleters := map[string]Deleter{"fake": func(r Record) (Resource, error) {
		return &fake{addr: r.Address, have: old.have, absent: true, log: &log}, nil
	}}
	moved := moving{&fake{addr: "firewalld_rich_rule.hub_443", want: "internal", log: &log}}
	p, err := Make(context.Background(), "h", []Node{{Resource: moved}}, st, deleters)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range p.Changes {
		got = append(got, string(ch.Action)+" "+ch.Address)
	}
	if want := "- firewalld_rich_rule.hub_443 (previous),+ firewalld_rich_rule.hub_443"; strings.Join(got, ",") != want {
		t.Fatalf("changes %q, want %q", got, want)
	}
	log = nil
	if err := p.Apply(context.Background(), st, Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Join(log, ",") != "apply firewalld_rich_rule.hub_443,apply firewalld_rich_rule.hub_443" {
		t.Errorf("applied %q", log)
	}
	if rec, _ := st.Recorded("firewalld_rich_rule.hub_443"); string(rec.Data) != `"internal"` {
		t.Errorf("state records %s, want the new object", rec.Data)
	}
	// Converged: nothing superseded any more.
	if p, _ := Make(context.Background(), "h", []Node{{Resource: moved}}, st, deleters); p.Pending() {
		t.Errorf("still pending: %+v", p.Changes)
	}
}

// one is a fake object on the host that several resources may name.
type one struct{ exists bool }

// alias manages obj under some spelling; it supersedes records of other
// spellings (as a path compared as text would) unless same says otherwise.
type alias struct {
	addr, spelling string
	obj            *one
	absent, same   bool
}

func (a *alias) Address() string { return a.addr }
func (a *alias) Plan(context.Context) (*Change, error) {
	ch := &Change{Address: a.addr}
	switch {
	case a.absent && a.obj.exists:
		ch.Action = Delete
	case !a.absent && !a.obj.exists:
		ch.Action = Create
	}
	return ch, nil
}
func (a *alias) Apply(context.Context, *Change, Output) error { a.obj.exists = !a.absent; return nil }
func (a *alias) Record() *Record {
	if a.absent {
		return nil
	}
	b, _ := json.Marshal(a.spelling)
	return &Record{Kind: "alias", Data: b}
}
func (a *alias) Supersedes(old Record) bool {
	var was string
	json.Unmarshal(old.Data, &was)
	return was != a.spelling && !a.same
}

// TestSameObjectNeverDeleted: a record that names the object a spec
// resource manages, under another spelling or another address, never
// leads to that object being deleted for good.
func TestSameObjectNeverDeleted(t *testing.T) {
	obj := &one{exists: true}
	deleters := map[string]Deleter{"alias": func(r Record) (Resource, error) {
		return &alias{addr: r.Address, obj: obj, absent: true}, nil
	}}
	for _, tt := range []struct {
		name   string
		record Record
		spec   *alias
	}{
		// Previous: the text differs, the object is the same.
		{"respelt", Record{Address: "file.x", Kind: "alias", Data: []byte(`"/sbin/x"`)}, &alias{addr: "file.x", spelling: "/usr/sbin/x", obj: obj}},
		// Orphan: the block was renamed, the path is the same.
		{"renamed", Record{Address: "file.a", Kind: "alias", Data: []byte(`"/etc/x"`)}, &alias{addr: "file.b", spelling: "/etc/x", obj: obj, same: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			obj.exists = true
			st := newState(t)
			st.Remember(tt.record)
			p, err := Make(context.Background(), "h", []Node{{Resource: tt.spec}}, st, deleters)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Apply(context.Background(), st, Discard); err != nil {
				t.Fatal(err)
			}
			if !obj.exists {
				t.Errorf("the object the spec manages was deleted; changes %+v", p.Changes)
			}
		})
	}
}
