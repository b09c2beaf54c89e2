//go:build pvfwmanual

package firewalld

import (
	"context"
	"os"
	"testing"

	"github.com/openbis/provision/executors"
)

func TestManual(t *testing.T) {
	bus := "unix:path=/tmp/pvfw/bus"
	var res []executors.Resource
	r, err := NewRule(RuleConfig{Name: "x", Bus: bus, Source: "192.0.2.10", Port: 9002})
	if err != nil {
		t.Fatal(err)
	}
	res = append(res, r)
	if os.Getenv("POLICY") != "" {
		p, err := NewPolicy(PolicyConfig{Name: "provision-jhub", Bus: bus, Ports: []Exposure{
			{Port: 8000, Open: true}, {Port: 8002, Allow: []string{"192.0.2.10"}}, {Port: 8001}, {Port: 8081}}})
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, p)
	}
	for _, r := range res {
		ch, err := r.Plan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s %s %v %v", r.Address(), ch.Action, ch.Reasons, ch.Warnings)
		if err := r.Apply(context.Background(), ch, &executors.Output{W: os.Stdout}); err != nil {
			t.Fatal(err)
		}
	}
}
