package render

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	l2model "github.com/vppmesh/vppmesh/models/vpp/l2"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/kvscheduler"
	"github.com/vppmesh/vppmesh/plugins/mesh/naming"
	"github.com/vppmesh/vppmesh/plugins/xconnect"
)

func TestDescriptorDerivesTheCrossConnectPath(t *testing.T) {
	d := Descriptor()
	if d.Name != DescriptorName || d.KeyPrefix != models.MeshRenderPrefix {
		t.Fatalf("descriptor %s at %s", d.Name, d.KeyPrefix)
	}
	v := &vppmeshv1.CrossConnect{Name: "mesh-c1",
		A: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, SocketFilename: "/run/c1.sock"}}},
		B: &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: 4, SocketFilename: "/run/ep.sock"}}}}
	if err := d.Validate(models.MeshRenderPrefix+"c1", v); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, kv := range d.DerivedValues(models.MeshRenderPrefix+"c1", v) {
		got[kv.Key] = true
	}
	for _, k := range []string{
		"config/vpp/v2/interfaces/mesh-c1-a", "config/vpp/v2/interfaces/mesh-c1-b",
		"config/vpp/l2/v2/xconnect/mesh-c1-a", "config/vpp/l2/v2/xconnect/mesh-c1-b",
	} {
		if !got[k] {
			t.Errorf("derived values lack %s: %v", k, got)
		}
	}
	if len(got) != 4 {
		t.Errorf("derived %d values, want 4", len(got))
	}
}

func memifEnd(sock string, id uint32) *vppmeshv1.Endpoint {
	return &vppmeshv1.Endpoint{Link: &vppmeshv1.Endpoint_Memif{Memif: &ifmodel.MemifLink{Master: true, Id: id, SocketFilename: sock}}}
}

// fakeVPP registers stand-ins of the interface and xconnect descriptors
// that record what exists, and refuse an xconnect whose interfaces do not.
type fakeVPP struct {
	mu  sync.Mutex
	ifs map[string]bool
	xcs map[string]string // rx → tx
}

func newFakeVPP(t *testing.T, s *kvscheduler.Scheduler) *fakeVPP {
	f := &fakeVPP{ifs: map[string]bool{}, xcs: map[string]string{}}
	err := kvscheduler.RegisterDescriptor(s, &kvscheduler.Descriptor[*ifmodel.Interface, struct{}]{
		Name: "fake-if", KeyPrefix: xconnect.InterfacePrefix,
		Create: func(_ context.Context, _ string, v *ifmodel.Interface) (struct{}, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.ifs[v.GetName()] {
				return struct{}{}, fmt.Errorf("%s exists", v.GetName())
			}
			f.ifs[v.GetName()] = true
			return struct{}{}, nil
		},
		Delete: func(_ context.Context, _ string, v *ifmodel.Interface, _ struct{}) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			for rx, tx := range f.xcs {
				if rx == v.GetName() || tx == v.GetName() {
					return fmt.Errorf("%s is in xconnect %s→%s", v.GetName(), rx, tx)
				}
			}
			delete(f.ifs, v.GetName())
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = kvscheduler.RegisterDescriptor(s, &kvscheduler.Descriptor[*l2model.XConnectPair, struct{}]{
		Name: "fake-xc", KeyPrefix: xconnect.XConnectPrefix,
		Dependencies: func(_ string, v *l2model.XConnectPair) []kvscheduler.Dependency {
			return []kvscheduler.Dependency{{Key: xconnect.InterfacePrefix + v.GetReceiveInterface()},
				{Key: xconnect.InterfacePrefix + v.GetTransmitInterface()}}
		},
		Create: func(_ context.Context, _ string, v *l2model.XConnectPair) (struct{}, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if !f.ifs[v.GetReceiveInterface()] || !f.ifs[v.GetTransmitInterface()] {
				return struct{}{}, fmt.Errorf("xconnect %s→%s: interface missing", v.GetReceiveInterface(), v.GetTransmitInterface())
			}
			f.xcs[v.GetReceiveInterface()] = v.GetTransmitInterface()
			return struct{}{}, nil
		},
		Delete: func(_ context.Context, _ string, v *l2model.XConnectPair, _ struct{}) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			delete(f.xcs, v.GetReceiveInterface())
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fakeVPP) state() (map[string]bool, map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.ifs), maps.Clone(f.xcs)
}

// A connection moved to another endpoint gets the other endpoint-side name,
// and the old interface handed to a retiring value: the scheduler wires the
// new path in a transaction that deletes no interface, and the old one goes
// only when the retiring value is deleted, in a later transaction.
func TestMoveWiresNewPathBeforeOldInterfaceGoes(t *testing.T) {
	s := kvscheduler.New(kvscheduler.Options{})
	defer s.Close()
	if err := Register(s); err != nil {
		t.Fatal(err)
	}
	f := newFakeVPP(t, s)
	ctx := context.Background()
	key := models.MeshRenderPrefix + "c1"
	client := memifEnd("/run/c1.sock", 0)
	old := &vppmeshv1.CrossConnect{Name: "mesh-c1", A: client, B: memifEnd("/run/ep1.sock", 3)}
	if _, err := s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: []kvscheduler.KeyValue{{Key: key, Value: old}}}); err != nil {
		t.Fatal(err)
	}
	if ifs, xcs := f.state(); !ifs["mesh-c1-a"] || !ifs["mesh-c1-b"] || xcs["mesh-c1-a"] != "mesh-c1-b" {
		t.Fatalf("first rendering: interfaces %v, xconnects %v", ifs, xcs)
	}

	moved := &vppmeshv1.CrossConnect{Name: "mesh-c1" + AltSuffix, A: client, B: memifEnd("/run/ep2.sock", 0)}
	if a, b := Names(moved); a != "mesh-c1-a" || b != "mesh-c1-c" {
		t.Fatalf("names of the moved rendering: %s, %s", a, b)
	}
	retireKey, retiring := naming.Retiring(old)
	rec, err := s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: []kvscheduler.KeyValue{
		{Key: key, Value: moved}, {Key: retireKey, Value: retiring}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range rec.Ops {
		if strings.HasPrefix(op.Key, xconnect.InterfacePrefix) && op.Op != kvscheduler.OpCreate {
			t.Errorf("the move transaction did %s on %s; want interface creates only", op.Op, op.Key)
		}
	}
	ifs, xcs := f.state()
	if !ifs["mesh-c1-b"] || !ifs["mesh-c1-c"] || xcs["mesh-c1-a"] != "mesh-c1-c" || xcs["mesh-c1-c"] != "mesh-c1-a" {
		t.Fatalf("after the move: interfaces %v, xconnects %v; want -c wired and -b still there", ifs, xcs)
	}
	if _, ok := xcs["mesh-c1-b"]; ok {
		t.Errorf("the old interface still has its xconnect: %v", xcs)
	}
	for _, k := range []string{key, RetirePrefix + "mesh-c1-b", xconnect.InterfacePrefix + "mesh-c1-b", xconnect.InterfacePrefix + "mesh-c1-c"} {
		if st, ok := s.StatusOf(k); !ok || st.State != kvscheduler.StateConfigured {
			t.Errorf("%s: %+v, want CONFIGURED", k, st)
		}
	}

	rec, err = s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: []kvscheduler.KeyValue{{Key: retireKey}}})
	if err != nil {
		t.Fatal(err)
	}
	ifs, xcs = f.state()
	if ifs["mesh-c1-b"] || !ifs["mesh-c1-c"] || xcs["mesh-c1-a"] != "mesh-c1-c" {
		t.Fatalf("after retiring: interfaces %v, xconnects %v; want -b gone, -c wired", ifs, xcs)
	}
	if len(rec.Ops) != 2 { // the retiring value and its interface
		t.Errorf("retiring ops %+v, want 2", rec.Ops)
	}

	// Moving back: -b again, the -c interface retires the same way.
	back := &vppmeshv1.CrossConnect{Name: "mesh-c1", A: client, B: memifEnd("/run/ep1.sock", 4)}
	retireKey, retiring = naming.Retiring(moved)
	if retireKey != RetirePrefix+"mesh-c1-c" {
		t.Fatalf("retiring %q", retireKey)
	}
	if _, err := s.Commit(ctx, kvscheduler.Txn{Kind: kvscheduler.TxnChange, Values: []kvscheduler.KeyValue{
		{Key: key, Value: back}, {Key: retireKey, Value: retiring}}}); err != nil {
		t.Fatal(err)
	}
	if ifs, xcs := f.state(); !ifs["mesh-c1-b"] || !ifs["mesh-c1-c"] || xcs["mesh-c1-a"] != "mesh-c1-b" {
		t.Fatalf("after moving back: interfaces %v, xconnects %v", ifs, xcs)
	}
}

func TestRetireDescriptorRefusesForeignNames(t *testing.T) {
	d := RetireDescriptor()
	key, v := naming.Retiring(&vppmeshv1.CrossConnect{Name: "mesh-c1", B: memifEnd("/run/ep.sock", 2)})
	if err := d.Validate(key, v); err != nil {
		t.Fatal(err)
	}
	kvs := d.DerivedValues(key, v)
	if i, _ := kvs[0].Value.(*ifmodel.Interface); len(kvs) != 1 || kvs[0].Key != xconnect.InterfacePrefix+"mesh-c1-b" ||
		i.GetName() != "mesh-c1-b" || i.GetMemif().GetId() != 2 || i.GetType() != ifmodel.Interface_MEMIF {
		t.Errorf("retiring value derives %v", kvs)
	}
	for key, v := range map[string]*vppmeshv1.CrossConnect{
		RetirePrefix + "x":    {Name: "mesh-c1-b", B: memifEnd("/run/ep.sock", 2)},
		RetirePrefix + "eth0": {Name: "eth0", B: memifEnd("/run/ep.sock", 2)},
		key:                   {Name: "mesh-c1-b", A: memifEnd("/run/c.sock", 0), B: memifEnd("/run/ep.sock", 2)},
	} {
		if err := d.Validate(key, v); err == nil {
			t.Errorf("%s → %v accepted", key, v)
		}
	}
}
