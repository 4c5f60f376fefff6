package orchestrator

import (
	"testing"

	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
)

func TestSetDerivedKeepsSortedAndForgetsGone(t *testing.T) {
	var e statusEntry
	for _, k := range []string{"d", "b", "c", "a"} {
		e.setDerived(kvscheduler.ValueStatus{Key: k, State: kvscheduler.StatePending})
	}
	e.setDerived(kvscheduler.ValueStatus{Key: "c", State: kvscheduler.StateFailed, Error: "boom"})
	e.setDerived(kvscheduler.ValueStatus{Key: "b", State: kvscheduler.StateRemoved})
	e.setDerived(kvscheduler.ValueStatus{Key: "x", State: kvscheduler.StateNonexistent})
	got := ""
	for _, d := range e.derived {
		got += d.Key + "=" + string(d.State) + d.Error + ";"
	}
	if want := "a=PENDING;c=FAILEDboom;d=PENDING;"; got != want {
		t.Fatalf("derived %s, want %s", got, want)
	}
	for _, k := range []string{"a", "c", "d"} {
		e.setDerived(kvscheduler.ValueStatus{Key: k, State: kvscheduler.StateRemoved})
	}
	if e.derived != nil {
		t.Fatalf("derived %+v after all removed, want nil", e.derived)
	}
}
