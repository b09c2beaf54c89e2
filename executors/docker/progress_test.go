package docker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/openbis/provision/internal/engine"

	"github.com/docker/docker/pkg/jsonmessage"
)

func TestStream(t *testing.T) {
	msgs := []jsonmessage.JSONMessage{
		{Status: "Loading layer", ID: "abc", Progress: &jsonmessage.JSONProgress{Current: 1, Total: 10}},
		{Status: "Loading layer", ID: "abc", Progress: &jsonmessage.JSONProgress{Current: 5, Total: 10}},
		{Stream: "Loaded image: jh:1\n"},
	}
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for _, m := range msgs {
		enc.Encode(m)
	}
	raw := in.String()

	var rec recorder
	if err := stream(strings.NewReader(raw), &rec, "docker_image.x", nil); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"transfer docker_image.x abc: Loading layer 1/10",
		"transfer docker_image.x abc: Loading layer 5/10",
		"progress docker_image.x Loaded image: jh:1",
	}
	if strings.Join(rec.lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("events %q, want %q", rec.lines, want)
	}

	term := recorder{term: &bytes.Buffer{}}
	if err := stream(strings.NewReader(raw), &term, "a", nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(term.term.String(), "Loaded image: jh:1") || len(term.lines) > 0 {
		t.Errorf("terminal output %q, events %q", term.term.String(), term.lines)
	}

	bad := `{"status":"Pulling"}` + "\n" + `{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}`
	for _, o := range []engine.Output{nil, &recorder{}, &recorder{term: &bytes.Buffer{}}} {
		if err := stream(strings.NewReader(bad), o, "a", nil); err == nil || !strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("output %+v: err = %v", o, err)
		}
	}
}

// recorder is an engine.Output that records what a resource reported.
type recorder struct {
	lines []string
	term  *bytes.Buffer // set: the output is a terminal
}

func (r *recorder) Progress(addr, msg string) { r.lines = append(r.lines, "progress "+addr+" "+msg) }
func (r *recorder) Transfer(addr, msg string, cur, total int64) {
	r.lines = append(r.lines, fmt.Sprintf("transfer %s %s %d/%d", addr, msg, cur, total))
}
func (r *recorder) Terminal() (io.Writer, uintptr, bool) {
	if r.term == nil {
		return nil, 0, false
	}
	return r.term, 0, true
}
