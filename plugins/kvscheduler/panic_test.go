package kvscheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"
)

// capLog records log lines (message and args) for assertions.
type capLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *capLog) add(level, msg string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, level+" "+msg+" "+fmt.Sprint(args...))
}
func (l *capLog) Info(msg string, args ...any)  { l.add("INFO", msg, args...) }
func (l *capLog) Warn(msg string, args ...any)  { l.add("WARN", msg, args...) }
func (l *capLog) Error(msg string, args ...any) { l.add("ERROR", msg, args...) }
func (l *capLog) Debug(msg string, args ...any) { l.add("DEBUG", msg, args...) }

func (l *capLog) find(substr ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, s := range substr {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		return line
	}
	return ""
}

// panicky panics in the callback named by the value's "panic" field.
func panicky(created *sync.Map) *Descriptor[*structpb.Struct, struct{}] {
	boom := func(v *structpb.Struct, cb string) {
		if v.GetFields()["panic"].GetStringValue() == cb {
			var m map[string]int
			m["boom-"+cb]++ // a nil-map write: a real bug, not a panic("...")
		}
	}
	return &Descriptor[*structpb.Struct, struct{}]{
		Name: "panicky", KeyPrefix: "p/",
		Equivalent: func(key string, a, b *structpb.Struct) bool {
			boom(b, "Equivalent")
			return a.GetFields()["v"].GetNumberValue() == b.GetFields()["v"].GetNumberValue()
		},
		Dependencies: func(key string, v *structpb.Struct) []Dependency {
			boom(v, "Dependencies")
			return nil
		},
		DerivedValues: func(key string, v *structpb.Struct) []KeyValue {
			boom(v, "DerivedValues")
			return []KeyValue{{Key: "child/" + strings.TrimPrefix(key, "p/"), Value: v}}
		},
		Create: func(_ context.Context, key string, v *structpb.Struct) (struct{}, error) {
			boom(v, "Create")
			created.Store(key, true)
			return struct{}{}, nil
		},
		Update: func(_ context.Context, key string, _, v *structpb.Struct, _ struct{}) (struct{}, error) {
			boom(v, "Update")
			return struct{}{}, nil
		},
		Delete: func(_ context.Context, key string, v *structpb.Struct, _ struct{}) error { return nil },
	}
}

func TestDescriptorPanicsAreLoggedAndFail(t *testing.T) {
	log := &capLog{}
	s := New(Options{Logger: log})
	defer s.Close()
	var created, kids sync.Map
	if err := RegisterDescriptor(s, panicky(&created)); err != nil {
		t.Fatal(err)
	}
	if err := RegisterDescriptor(s, &Descriptor[*structpb.Struct, struct{}]{Name: "child", KeyPrefix: "child/",
		Create: func(_ context.Context, key string, _ *structpb.Struct) (struct{}, error) {
			kids.Store(key, true)
			return struct{}{}, nil
		},
		Delete: func(context.Context, string, *structpb.Struct, struct{}) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	val := func(cb string, v float64) *structpb.Struct {
		st, _ := structpb.NewStruct(map[string]any{"panic": cb, "v": v})
		return st
	}
	commit := func(kvs ...KeyValue) {
		t.Helper()
		if _, err := s.Commit(context.Background(), Txn{Kind: TxnChange, Values: kvs}); err != nil {
			t.Fatal(err)
		}
	}
	commit(
		KeyValue{Key: "p/deps", Value: val("Dependencies", 1)},
		KeyValue{Key: "p/derived", Value: val("DerivedValues", 1)},
		KeyValue{Key: "p/create", Value: val("Create", 1)},
		KeyValue{Key: "p/equiv", Value: val("", 1)},
		KeyValue{Key: "p/ok", Value: val("", 1)},
	)
	// Equivalent panics only on the update of p/equiv.
	commit(KeyValue{Key: "p/equiv", Value: val("Equivalent", 2)})

	for _, c := range []struct{ key, cb string }{
		{"p/deps", "Dependencies"}, {"p/derived", "DerivedValues"}, {"p/create", "Create"}, {"p/equiv", "Equivalent"},
	} {
		st, ok := s.StatusOf(c.key)
		if !ok || st.State != StateFailed || !strings.Contains(st.Error, c.cb+"("+c.key+") panicked") {
			t.Errorf("%s: state %s error %q, want FAILED naming the %s panic", c.key, st.State, st.Error, c.cb)
		}
		line := log.find("ERROR descriptor panicked", c.key, c.cb)
		if line == "" || !strings.Contains(line, "goroutine") || !strings.Contains(line, "panic_test.go") {
			t.Errorf("%s: no error log with a stack for the %s panic; got %q", c.key, c.cb, line)
		}
	}
	// The parent whose DerivedValues panicked is not applied without its
	// children (the bug of issue 14), and its dependencies were not dropped
	// silently either.
	if _, ok := created.Load("p/derived"); ok {
		t.Error("p/derived was created although DerivedValues panicked")
	}
	if _, ok := created.Load("p/deps"); ok {
		t.Error("p/deps was created although Dependencies panicked")
	}
	if st, _ := s.StatusOf("p/ok"); st.State != StateConfigured {
		t.Errorf("healthy value next to the panics: %s %s", st.State, st.Error)
	}
	if _, ok := kids.Load("child/ok"); !ok {
		t.Error("healthy value's child not created")
	}
	// The scheduler is still usable: fixing the value clears the failure.
	commit(KeyValue{Key: "p/derived", Value: val("", 3)})
	if st, _ := s.StatusOf("p/derived"); st.State != StateConfigured {
		t.Errorf("p/derived after the fix: %s %s", st.State, st.Error)
	}
	if _, ok := kids.Load("child/derived"); !ok {
		t.Error("p/derived's child not created after the fix")
	}
}
