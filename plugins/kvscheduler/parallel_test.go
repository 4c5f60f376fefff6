package kvscheduler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

func TestParallelismGivesSameResult(t *testing.T) {
	var kvs []KeyValue
	for i := 0; i < 60; i++ {
		kvs = append(kvs, put(fmt.Sprintf("/xc/%02d", i), withKids(val("x", fmt.Sprintf("/if/%02d", i%7)),
			map[string]*structpb.Struct{fmt.Sprintf("/d/%02d", i): val("k")})))
	}
	for i := 0; i < 7; i++ {
		kvs = append(kvs, put(fmt.Sprintf("/if/%02d", i), val("i")))
	}
	var want string
	for _, p := range []int{1, 3, 16} {
		s, f := newTestScheduler(t, Options{Parallelism: p})
		rec := commit(t, s, kvs...)
		rec2 := commit(t, s, del("/if/03"), put("/if/04", withClass(val("i"), "other")))
		got := strings.Join(opKeys(rec), ";") + "|" + strings.Join(opKeys(rec2), ";")
		if want == "" {
			want = got
		} else if got != want {
			t.Fatalf("parallelism %d: history differs:\n%s\nwant\n%s", p, got, want)
		}
		f.checkViolations(t)
	}
}

// TestIndependentOperationsOverlap proves that a wave's calls are issued
// concurrently (pipelined): every Create waits until four are in flight,
// which sequential execution would never reach.
func TestIndependentOperationsOverlap(t *testing.T) {
	s := New(Options{Parallelism: 4})
	defer s.Close()
	var mu sync.Mutex
	inFlight, most := 0, 0
	all := make(chan struct{})
	d := &Descriptor[*structpb.Struct, int]{
		Name: "if", KeyPrefix: "/if/",
		Create: func(ctx context.Context, key string, v *structpb.Struct) (int, error) {
			mu.Lock()
			inFlight++
			if inFlight > most {
				most = inFlight
			}
			if most == 4 {
				select {
				case <-all:
				default:
					close(all)
				}
			}
			mu.Unlock()
			select {
			case <-all:
			case <-time.After(10 * time.Second): // sequential execution: give up, the check below fails
			}
			mu.Lock()
			inFlight--
			mu.Unlock()
			return 0, nil
		},
		Delete: func(context.Context, string, *structpb.Struct, int) error { return nil },
	}
	if err := RegisterDescriptor(s, d); err != nil {
		t.Fatal(err)
	}
	commit(t, s, put("/if/1", val("")), put("/if/2", val("")), put("/if/3", val("")), put("/if/4", val("")))
	if most != 4 {
		t.Fatalf("at most %d creates in flight, want 4", most)
	}
}

func TestDescriptorPanicBecomesFailure(t *testing.T) {
	s := New(Options{RetryInitial: time.Hour})
	defer s.Close()
	d := &Descriptor[*structpb.Struct, int]{
		Name: "if", KeyPrefix: "/if/",
		Create: func(context.Context, string, *structpb.Struct) (int, error) { panic("bug") },
		Delete: func(context.Context, string, *structpb.Struct, int) error { return nil },
		Dependencies: func(key string, v *structpb.Struct) []Dependency {
			if key == "/if/a" {
				panic("deps bug")
			}
			return []Dependency{{Key: "/if/a"}}
		},
	}
	if err := RegisterDescriptor(s, d); err != nil {
		t.Fatal(err)
	}
	commit(t, s, put("/if/a", val("")), put("/if/b", val("")))
	st := mustState(t, s, "/if/a", StateFailed)
	if !strings.Contains(st.Error, "panicked") {
		t.Fatalf("status %+v", st)
	}
	mustState(t, s, "/if/b", StatePending)
}

func TestRetrieveAfterOrder(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	var order []string
	mk := func(name, prefix string, after ...string) *Descriptor[*structpb.Struct, int] {
		return &Descriptor[*structpb.Struct, int]{
			Name: name, KeyPrefix: prefix, RetrieveAfter: after,
			Create: func(context.Context, string, *structpb.Struct) (int, error) { return 0, nil },
			Delete: func(context.Context, string, *structpb.Struct, int) error { return nil },
			Retrieve: func(context.Context, []KV[*structpb.Struct]) ([]Retrieved[*structpb.Struct, int], error) {
				order = append(order, name)
				return nil, nil
			},
		}
	}
	for _, d := range []*Descriptor[*structpb.Struct, int]{mk("xc", "/xc/", "if", "bd"), mk("bd", "/bd/", "if"), mk("if", "/if/")} {
		if err := RegisterDescriptor(s, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Commit(context.Background(), Txn{Kind: TxnDownstreamResync}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(order, ",") != "if,bd,xc" {
		t.Fatalf("retrieve order %v", order)
	}
}
