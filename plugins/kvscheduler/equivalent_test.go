package kvscheduler

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// A resync asks a descriptor's Equivalent once per value, not once per
// planning step (an interface's answer clones and normalises both values),
// and a value whose applied side changes in the transaction is asked again.
func TestEquivalentAskedOncePerValuePerTxn(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	var mu sync.Mutex
	calls := map[string]int{}
	sb := map[string]*structpb.Struct{}
	d := &Descriptor[*structpb.Struct, int]{
		Name: "eq", KeyPrefix: "/eq/",
		Equivalent: func(key string, a, b *structpb.Struct) bool {
			mu.Lock()
			calls[key]++
			mu.Unlock()
			return proto.Equal(a, b)
		},
		Create: func(_ context.Context, key string, v *structpb.Struct) (int, error) {
			mu.Lock()
			sb[key] = v
			mu.Unlock()
			return 0, nil
		},
		Delete: func(_ context.Context, key string, _ *structpb.Struct, _ int) error {
			mu.Lock()
			delete(sb, key)
			mu.Unlock()
			return nil
		},
		Retrieve: func(context.Context, []KV[*structpb.Struct]) ([]Retrieved[*structpb.Struct, int], error) {
			mu.Lock()
			defer mu.Unlock()
			var out []Retrieved[*structpb.Struct, int]
			for k, v := range sb {
				// A copy, as a dump would return: equal, never identical.
				out = append(out, Retrieved[*structpb.Struct, int]{Key: k, Value: proto.Clone(v).(*structpb.Struct), Origin: FromNB})
			}
			return out, nil
		},
	}
	if err := RegisterDescriptor(s, d); err != nil {
		t.Fatal(err)
	}
	var kvs []KeyValue
	for i := range 20 {
		kvs = append(kvs, KeyValue{Key: fmt.Sprintf("/eq/%d", i), Value: val("v")})
	}
	ctx := context.Background()
	if _, err := s.Commit(ctx, Txn{Values: kvs}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clear(calls)
	sb["/eq/0"] = val("changed behind our back")
	mu.Unlock()
	rec, err := s.Commit(ctx, Txn{Kind: TxnFullResync, Values: kvs})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, kv := range kvs[1:] {
		if calls[kv.Key] != 1 {
			t.Errorf("%s: Equivalent asked %d times in one resync, want 1", kv.Key, calls[kv.Key])
		}
	}
	// The drifted value is fixed (its answer changes once it is re-applied).
	for _, op := range rec.Ops {
		if op.Key != "/eq/0" {
			t.Errorf("resync touched %s, which VPP held unchanged", op.Key)
		}
	}
	if len(rec.Ops) == 0 || !proto.Equal(sb["/eq/0"], val("v")) {
		t.Fatalf("resync ops %+v, southbound %v: want /eq/0 put back", rec.Ops, sb["/eq/0"])
	}
}
