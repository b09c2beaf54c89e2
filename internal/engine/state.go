package engine

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/openbis/provision/executors"
)

// DefaultStatePath is where provision remembers what it manages.
const DefaultStatePath = "/var/lib/provision/state.json"

const stateVersion = 2

// State records the resources provision created or changed, per host
// block (one machine may play several, like the demo server), so a
// resource dropped from the spec is planned for deletion, and nothing
// provision did not create is ever deleted.
type State struct {
	path    string
	host    string
	Version int                          `json:"version"`
	Hosts   map[string]map[string]Record `json:"hosts"`
}

// LoadState reads the state file for the host block host; a missing file
// is an empty state.
func LoadState(path, host string) (*State, error) {
	st := &State{path: path, host: host, Version: stateVersion, Hosts: map[string]map[string]Record{}}
	f, err := executors.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if !f.Exists {
		st.Hosts[host] = map[string]Record{}
		return st, nil
	}
	if err := json.Unmarshal(f.Content, st); err != nil {
		return nil, fmt.Errorf("read state %s: %w (fix or move the file; it only lists what provision may delete)", path, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("read state %s: version %d, this provision understands %d", path, st.Version, stateVersion)
	}
	if st.Hosts == nil {
		st.Hosts = map[string]map[string]Record{}
	}
	if st.Hosts[host] == nil {
		st.Hosts[host] = map[string]Record{}
	}
	return st, nil
}

// Remember records a resource provision manages.
func (s *State) Remember(r Record) { s.Hosts[s.host][r.Address] = r }

// Recorded returns the record of addr, if the host has one.
func (s *State) Recorded(addr string) (Record, bool) {
	r, ok := s.Hosts[s.host][addr]
	return r, ok
}

// Forget drops a deleted resource.
func (s *State) Forget(addr string) { delete(s.Hosts[s.host], addr) }

// Orphans lists the host's recorded resources the spec no longer has.
func (s *State) Orphans(inSpec map[string]Resource) []Record {
	var out []Record
	for addr, r := range s.Hosts[s.host] {
		if _, ok := inSpec[addr]; !ok {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// Save writes the state atomically, 0600: it names paths and addresses of
// the host's security set-up.
func (s *State) Save() error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := executors.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := executors.WriteFile(s.path, append(b, '\n'), 0o600, -1, -1); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}

// stateMark identifies the state file a plan was made with: its path and
// the host's records in it, so that a saved plan applied with another
// --state, or after another apply changed the records, is refused for
// that reason.
type stateMark struct {
	Path    string `json:"path"`
	Records string `json:"records"`
}

func (s *State) mark() stateMark {
	if s == nil {
		return stateMark{}
	}
	abs, err := filepath.Abs(s.path)
	if err != nil {
		abs = s.path
	}
	return stateMark{Path: abs, Records: executors.Fingerprint(s.Hosts[s.host])}
}
