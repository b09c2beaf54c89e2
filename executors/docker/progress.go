package docker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/openbis/provision/internal/engine"

	"github.com/docker/docker/pkg/jsonmessage"
)

// stream renders the daemon's JSON message stream (pull, load, build) to
// out: docker's own renderer with per-layer bars on a terminal, steps and
// transfer ticks otherwise (the renderer throttles them). It returns the
// first error the daemon reported and calls aux for auxiliary messages
// (the built image's ID).
func stream(r io.Reader, out engine.Output, addr string, aux func(jsonmessage.JSONMessage)) error {
	if out == nil {
		out = engine.Discard
	}
	if w, fd, ok := out.Terminal(); ok {
		return streamErr(jsonmessage.DisplayJSONMessagesStream(r, w, fd, true, aux))
	}
	dec := json.NewDecoder(r)
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
		msg := message(jm)
		switch {
		case msg == "":
		case jm.Progress != nil:
			out.Transfer(addr, msg, jm.Progress.Current, jm.Progress.Total)
		default:
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
