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
	addr      string
	have      *string // nil: absent
	want      string
	absent    bool // desired: deleted
	restarter bool
	log       *[]string
	fail      error
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
	if err := p.Save(path, map[string]string{"spec": "s"}); err != nil {
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
