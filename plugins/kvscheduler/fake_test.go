package kvscheduler

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// fakeSB is a southbound in memory. It checks ordering itself: creating a
// value whose dependency or parent is absent, or deleting a value something
// present still depends on, is recorded as a violation.
type fakeSB struct {
	mu         sync.Mutex
	items      map[string]*structpb.Struct // applied by the agent
	external   map[string]*structpb.Struct // present independently (FromSB)
	meta       map[string]int
	nextMeta   int
	fail       map[string]string // key -> injected error for every operation
	log        []sbOp
	violations []string
}

type sbOp struct{ op, key string }

func newFakeSB() *fakeSB {
	return &fakeSB{items: map[string]*structpb.Struct{}, external: map[string]*structpb.Struct{},
		meta: map[string]int{}, fail: map[string]string{}}
}

func (f *fakeSB) has(key string) bool {
	_, a := f.items[key]
	_, b := f.external[key]
	return a || b
}

// needs lists what a value requires to be present: its dependencies and its parent.
func needs(v *structpb.Struct) []string {
	var out []string
	for _, d := range v.GetFields()["deps"].GetListValue().GetValues() {
		out = append(out, d.GetStringValue())
	}
	if p := v.GetFields()["_parent"].GetStringValue(); p != "" {
		out = append(out, p)
	}
	return out
}

func (f *fakeSB) opLog() []sbOp {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sbOp(nil), f.log...)
}

func (f *fakeSB) resetLog() {
	f.mu.Lock()
	f.log = nil
	f.mu.Unlock()
}

func (f *fakeSB) setFail(key, msg string) {
	f.mu.Lock()
	if msg == "" {
		delete(f.fail, key)
	} else {
		f.fail[key] = msg
	}
	f.mu.Unlock()
}

func (f *fakeSB) wipe() {
	f.mu.Lock()
	f.items = map[string]*structpb.Struct{}
	f.meta = map[string]int{}
	f.mu.Unlock()
}

func (f *fakeSB) snapshot() map[string]*structpb.Struct {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]*structpb.Struct, len(f.items))
	for k, v := range f.items {
		out[k] = v
	}
	return out
}

func (f *fakeSB) checkViolations(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.violations) > 0 {
		t.Fatalf("southbound ordering violations: %v", f.violations)
	}
}

func (f *fakeSB) record(op, key string) error {
	f.log = append(f.log, sbOp{op, key})
	if msg, ok := f.fail[key]; ok {
		return fmt.Errorf("injected: %s", msg)
	}
	return nil
}

// fakeDescriptor handles *structpb.Struct values with fields: "deps" (list
// of keys), "kids" (struct: derived key -> struct value), "class" (a change
// needs recreate), "invalid" (Validate fails). Metadata is an index, like a
// sw_if_index.
func fakeDescriptor(f *fakeSB, name, prefix string, retrieve bool) *Descriptor[*structpb.Struct, int] {
	d := &Descriptor[*structpb.Struct, int]{
		Name:      name,
		KeyPrefix: prefix,
		Validate: func(key string, v *structpb.Struct) error {
			if v.GetFields()["invalid"].GetBoolValue() {
				return fmt.Errorf("%s is marked invalid", key)
			}
			return nil
		},
		Dependencies: func(key string, v *structpb.Struct) []Dependency {
			var out []Dependency
			for _, d := range v.GetFields()["deps"].GetListValue().GetValues() {
				out = append(out, Dependency{Label: "needs", Key: d.GetStringValue()})
			}
			return out
		},
		DerivedValues: func(key string, v *structpb.Struct) []KeyValue {
			var out []KeyValue
			for k, kv := range v.GetFields()["kids"].GetStructValue().GetFields() {
				kid := proto.Clone(kv.GetStructValue()).(*structpb.Struct)
				if kid.Fields == nil {
					kid.Fields = map[string]*structpb.Value{}
				}
				kid.Fields["_parent"] = structpb.NewStringValue(key)
				out = append(out, KeyValue{Key: k, Value: kid})
			}
			sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
			return out
		},
		UpdateWithRecreate: func(key string, old, new *structpb.Struct, _ int) bool {
			return old.GetFields()["class"].GetStringValue() != new.GetFields()["class"].GetStringValue() ||
				!equalStrings(needs(old), needs(new))
		},
		Create: func(_ context.Context, key string, v *structpb.Struct) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if err := f.record("create", key); err != nil {
				return 0, err
			}
			if _, ok := f.items[key]; ok {
				f.violations = append(f.violations, "create of existing "+key)
			}
			for _, n := range needs(v) {
				if !f.has(n) {
					f.violations = append(f.violations, fmt.Sprintf("create %s before %s", key, n))
				}
			}
			f.nextMeta++
			f.items[key], f.meta[key] = v, f.nextMeta
			return f.nextMeta, nil
		},
		Update: func(_ context.Context, key string, old, new *structpb.Struct, meta int) (int, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if err := f.record("update", key); err != nil {
				return meta, err
			}
			if !proto.Equal(f.items[key], old) {
				f.violations = append(f.violations, "update of "+key+" from a value it does not have")
			}
			f.items[key] = new
			return meta, nil
		},
		Delete: func(_ context.Context, key string, v *structpb.Struct, meta int) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			if err := f.record("delete", key); err != nil {
				return err
			}
			if _, ok := f.items[key]; !ok {
				f.violations = append(f.violations, "delete of absent "+key)
			}
			if f.meta[key] != meta {
				f.violations = append(f.violations, fmt.Sprintf("delete %s with metadata %d, want %d", key, meta, f.meta[key]))
			}
			delete(f.items, key)
			delete(f.meta, key)
			for k, other := range f.items {
				for _, n := range needs(other) {
					if n == key {
						f.violations = append(f.violations, fmt.Sprintf("delete %s while %s needs it", key, k))
					}
				}
			}
			return nil
		},
		Retrieve: func(_ context.Context, desired []KV[*structpb.Struct]) ([]Retrieved[*structpb.Struct, int], error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			var out []Retrieved[*structpb.Struct, int]
			for k, v := range f.items {
				if strings.HasPrefix(k, prefix) {
					out = append(out, Retrieved[*structpb.Struct, int]{Key: k, Value: v, Metadata: f.meta[k], Origin: FromNB})
				}
			}
			for k, v := range f.external {
				if strings.HasPrefix(k, prefix) {
					out = append(out, Retrieved[*structpb.Struct, int]{Key: k, Value: v, Origin: FromSB})
				}
			}
			return out, nil
		},
	}
	if !retrieve {
		d.Retrieve = nil
	}
	return d
}

// val builds a test value: val("payload", "dep1", "dep2").
func val(payload string, deps ...string) *structpb.Struct {
	list := make([]any, len(deps))
	for i, d := range deps {
		list[i] = d
	}
	s, err := structpb.NewStruct(map[string]any{"v": payload, "deps": list})
	if err != nil {
		panic(err)
	}
	return s
}

func withKids(v *structpb.Struct, kids map[string]*structpb.Struct) *structpb.Struct {
	fields := map[string]*structpb.Value{}
	for k, kv := range kids {
		fields[k] = structpb.NewStructValue(kv)
	}
	v.Fields["kids"] = structpb.NewStructValue(&structpb.Struct{Fields: fields})
	return v
}

func withClass(v *structpb.Struct, class string) *structpb.Struct {
	v.Fields["class"] = structpb.NewStringValue(class)
	return v
}

func invalid(v *structpb.Struct) *structpb.Struct {
	v.Fields["invalid"] = structpb.NewBoolValue(true)
	return v
}

// newTestScheduler registers "if" (/if/), "xc" (/xc/) and "d" (/d/, derived
// values) descriptors over one fake southbound.
func newTestScheduler(t testing.TB, opts Options) (*Scheduler, *fakeSB) {
	t.Helper()
	if opts.RetryInitial == 0 {
		opts.RetryInitial = time.Hour // tests drive retries themselves unless they say otherwise
		opts.RetryMax = time.Hour
	}
	s := New(opts)
	t.Cleanup(s.Close)
	f := newFakeSB()
	for _, d := range []*Descriptor[*structpb.Struct, int]{
		fakeDescriptor(f, "if", "/if/", true),
		fakeDescriptor(f, "xc", "/xc/", true),
		fakeDescriptor(f, "d", "/d/", true),
	} {
		if err := RegisterDescriptor(s, d); err != nil {
			t.Fatal(err)
		}
	}
	return s, f
}

func commit(t testing.TB, s *Scheduler, kvs ...KeyValue) TxnRecord {
	t.Helper()
	rec, err := s.Commit(context.Background(), Txn{Kind: TxnChange, Values: kvs})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func put(key string, v proto.Message) KeyValue { return KeyValue{Key: key, Value: v} }
func del(key string) KeyValue                  { return KeyValue{Key: key} }

func mustState(t testing.TB, s *Scheduler, key string, want State) ValueStatus {
	t.Helper()
	st, ok := s.StatusOf(key)
	if !ok {
		t.Fatalf("%s: no status, want %s", key, want)
	}
	if st.State != want {
		t.Fatalf("%s: state %s (error %q, missing %v), want %s", key, st.State, st.Error, st.Missing, want)
	}
	return st
}

// opKeys renders a record's ops as "OP key" strings in execution order.
func opKeys(rec TxnRecord) []string {
	out := make([]string, len(rec.Ops))
	for i, o := range rec.Ops {
		out[i] = string(o.Op) + " " + o.Key
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}
