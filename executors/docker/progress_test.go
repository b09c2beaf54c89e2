package docker

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/openbis/provision/executors"
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

	var plain bytes.Buffer
	if err := stream(strings.NewReader(raw), &executors.Output{W: &plain}, "docker_image.x", nil); err != nil {
		t.Fatal(err)
	}
	if want := "docker_image.x: abc: Loading layer\ndocker_image.x: Loaded image: jh:1\n"; plain.String() != want {
		t.Errorf("plain output %q, want %q (one line per step)", plain.String(), want)
	}

	var js bytes.Buffer
	if err := stream(strings.NewReader(raw), &executors.Output{W: &js, JSON: true}, "docker_image.x", nil); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(js.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("json lines %q", lines)
	}
	var ev executors.Event
	if err := json.Unmarshal([]byte(lines[1]), &ev); err != nil || ev.Current != 5 || ev.Total != 10 || ev.Address != "docker_image.x" {
		t.Errorf("event %+v, %v", ev, err)
	}

	var term bytes.Buffer
	if err := stream(strings.NewReader(raw), &executors.Output{W: &term, Terminal: true}, "a", nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(term.String(), "Loaded image: jh:1") {
		t.Errorf("terminal output %q", term.String())
	}

	bad := `{"status":"Pulling"}` + "\n" + `{"errorDetail":{"message":"unauthorized: authentication required"},"error":"unauthorized: authentication required"}`
	for _, o := range []*executors.Output{nil, {W: &bytes.Buffer{}}, {W: &bytes.Buffer{}, JSON: true}, {W: &bytes.Buffer{}, Terminal: true}} {
		if err := stream(strings.NewReader(bad), o, "a", nil); err == nil || !strings.Contains(err.Error(), "unauthorized") {
			t.Errorf("output %+v: err = %v", o, err)
		}
	}
}
