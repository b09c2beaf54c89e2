package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/openbis/provision/executors"
)

// stream renders the daemon's JSON message stream (pull, load, build) to
// out: docker's own renderer with per-layer bars on a terminal, one line
// per step otherwise, JSON events with out.JSON. It returns the first
// error the daemon reported and calls aux for auxiliary messages (the
// built image's ID).
func stream(r io.Reader, out *executors.Output, addr string, aux func(jsonmessage.JSONMessage)) error {
	if out != nil && out.W != nil && out.Terminal && !out.JSON {
		err := jsonmessage.DisplayJSONMessagesStream(r, out.W, out.FD, true, aux)
		return streamErr(err)
	}
	dec := json.NewDecoder(r)
	last := map[string]string{} // id → last status printed
	pct := map[string]int64{}   // id → last percent sent as JSON
	for {
		var jm jsonmessage.JSONMessage
		if err := dec.Decode(&jm); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read daemon progress: %w", err)
		}
		if jm.Error != nil {
			return streamErr(jm.Error)
		}
		if jm.ErrorMessage != "" {
			return errors.New(jm.ErrorMessage)
		}
		if jm.Aux != nil {
			if aux != nil {
				aux(jm)
			}
			continue
		}
		if out == nil || out.W == nil {
			continue
		}
		if out.JSON {
			ev := executors.Event{Type: "progress", Address: addr, Message: message(jm)}
			if jm.Progress != nil {
				ev.Current, ev.Total = jm.Progress.Current, jm.Progress.Total
				// One event per percent, not per chunk: a 5 GB load
				// would otherwise send thousands.
				if ev.Total > 0 {
					p := ev.Current * 100 / ev.Total
					if old, ok := pct[jm.ID+jm.Status]; ok && p == old && ev.Current < ev.Total {
						continue
					}
					pct[jm.ID+jm.Status] = p
				}
			}
			if ev.Message == "" {
				continue
			}
			b, _ := json.Marshal(ev)
			out.W.Write(append(b, '\n'))
			continue
		}
		// Plain text: one line per step, not per progress tick.
		if jm.Progress != nil && last[jm.ID] == jm.Status {
			continue
		}
		last[jm.ID] = jm.Status
		if msg := message(jm); msg != "" {
			out.Progress(addr, msg)
		}
	}
}

func message(jm jsonmessage.JSONMessage) string {
	var s string
	switch {
	case jm.Stream != "":
		s = jm.Stream
	case jm.ID != "" && jm.Status != "":
		s = jm.ID + ": " + jm.Status
	default:
		s = jm.Status
	}
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == '\r') {
		s = s[:len(s)-1]
	}
	return s
}

func streamErr(err error) error {
	var je *jsonmessage.JSONError
	if errors.As(err, &je) {
		return errors.New(je.Message)
	}
	return err
}
