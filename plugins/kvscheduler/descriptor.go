package kvscheduler

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"

	"google.golang.org/protobuf/proto"
)

// adapter is the untyped view of a Descriptor[V, M]. Every callback recovers
// from panics so that one buggy descriptor or odd value cannot take the agent
// down; a panic becomes an error on that key.
type adapter struct {
	name          string
	prefix        string
	retrieveAfter []string
	plainEqual    bool // equivalent is proto.Equal: no custom Equivalent
	// retrieved is set once a Retrieve succeeded: until then the
	// scheduler has no record of this descriptor's southbound at all.
	// Only transactions (one at a time) touch it.
	retrieved bool

	validate   func(key string, v proto.Message) error
	equivalent func(key string, old, new proto.Message) bool
	deps       func(key string, v proto.Message) ([]Dependency, error) // error: a recovered panic
	derived    func(key string, v proto.Message) ([]KeyValue, error)   // error: a recovered panic
	create     func(ctx context.Context, key string, v proto.Message) (any, error)
	update     func(ctx context.Context, key string, old, new proto.Message, meta any) (any, error) // nil: recreate
	recreate   func(key string, old, new proto.Message, meta any) bool
	delete     func(ctx context.Context, key string, v proto.Message, meta any) error
	retrieve   func(ctx context.Context, desired []KeyValue) ([]RetrievedValue, error) // nil: trust the record

	log     Logger   // set by the scheduler; recovered panics go there with their stack
	pending sync.Map // key → *PanicError of an Equivalent/UpdateWithRecreate call
}

// ErrClosed is returned by calls on a closed scheduler.
var ErrClosed = errors.New("kvscheduler: closed")

// RegisterDescriptor adds a typed descriptor to the scheduler. Names and key
// prefixes must be unique; a key is handled by the descriptor with the
// longest matching prefix.
func RegisterDescriptor[V proto.Message, M any](s *Scheduler, d *Descriptor[V, M]) error {
	if d == nil || d.Name == "" || d.KeyPrefix == "" {
		return errors.New("kvscheduler: descriptor needs a Name and a KeyPrefix")
	}
	if d.Create == nil || d.Delete == nil {
		return fmt.Errorf("kvscheduler: descriptor %s needs Create and Delete", d.Name)
	}
	a := &adapter{name: d.Name, prefix: d.KeyPrefix, retrieveAfter: append([]string(nil), d.RetrieveAfter...),
		plainEqual: d.Equivalent == nil}
	cast := func(key string, v proto.Message) (V, error) {
		tv, ok := v.(V)
		if !ok {
			var zero V
			return zero, fmt.Errorf("value of %s is %T, descriptor %s handles %T", key, v, d.Name, zero)
		}
		return tv, nil
	}
	castMeta := func(meta any) M {
		m, _ := meta.(M) // nil metadata (never created) yields the zero M
		return m
	}
	a.validate = func(key string, v proto.Message) (err error) {
		defer a.recoverInto(&err, "Validate", key)
		tv, err := cast(key, v)
		if err != nil || d.Validate == nil {
			return err
		}
		return d.Validate(key, tv)
	}
	a.equivalent = func(key string, old, new proto.Message) (eq bool) {
		defer func() {
			if r := recover(); r != nil {
				// "Not equivalent" plans an operation on key; that
				// operation fails with the panic, so the value ends FAILED.
				a.pending.Store(key, a.recovered("Equivalent", key, r))
				eq = false
			}
		}()
		to, err1 := cast(key, old)
		tn, err2 := cast(key, new)
		if err1 != nil || err2 != nil {
			return false
		}
		if d.Equivalent == nil {
			return proto.Equal(to, tn)
		}
		return d.Equivalent(key, to, tn)
	}
	a.deps = func(key string, v proto.Message) (out []Dependency, err error) {
		defer func() {
			if r := recover(); r != nil {
				out, err = nil, a.recovered("Dependencies", key, r)
			}
		}()
		tv, cerr := cast(key, v)
		if cerr != nil || d.Dependencies == nil {
			return nil, nil
		}
		return d.Dependencies(key, tv), nil
	}
	a.derived = func(key string, v proto.Message) (out []KeyValue, err error) {
		defer func() {
			if r := recover(); r != nil {
				out, err = nil, a.recovered("DerivedValues", key, r)
			}
		}()
		tv, cerr := cast(key, v)
		if cerr != nil || d.DerivedValues == nil {
			return nil, nil
		}
		return d.DerivedValues(key, tv), nil
	}
	a.create = func(ctx context.Context, key string, v proto.Message) (meta any, err error) {
		defer a.recoverInto(&err, "Create", key)
		if err := a.takePending(key); err != nil {
			return nil, err
		}
		tv, err := cast(key, v)
		if err != nil {
			return nil, err
		}
		return d.Create(ctx, key, tv)
	}
	if d.Update != nil {
		a.update = func(ctx context.Context, key string, old, new proto.Message, meta any) (nm any, err error) {
			defer a.recoverInto(&err, "Update", key)
			if err := a.takePending(key); err != nil {
				return meta, err
			}
			to, err := cast(key, old)
			if err != nil {
				return meta, err
			}
			tn, err := cast(key, new)
			if err != nil {
				return meta, err
			}
			return d.Update(ctx, key, to, tn, castMeta(meta))
		}
	}
	a.recreate = func(key string, old, new proto.Message, meta any) (re bool) {
		defer func() {
			if r := recover(); r != nil {
				a.pending.Store(key, a.recovered("UpdateWithRecreate", key, r))
				re = true
			}
		}()
		if d.Update == nil {
			return true
		}
		if d.UpdateWithRecreate == nil {
			return false
		}
		to, err1 := cast(key, old)
		tn, err2 := cast(key, new)
		if err1 != nil || err2 != nil {
			return true
		}
		return d.UpdateWithRecreate(key, to, tn, castMeta(meta))
	}
	a.delete = func(ctx context.Context, key string, v proto.Message, meta any) (err error) {
		defer a.recoverInto(&err, "Delete", key)
		if err := a.takePending(key); err != nil {
			return err
		}
		tv, err := cast(key, v)
		if err != nil {
			return err
		}
		return d.Delete(ctx, key, tv, castMeta(meta))
	}
	if d.Retrieve != nil {
		a.retrieve = func(ctx context.Context, desired []KeyValue) (out []RetrievedValue, err error) {
			defer a.recoverInto(&err, "Retrieve", d.KeyPrefix)
			typed := make([]KV[V], 0, len(desired))
			for _, kv := range desired {
				if tv, err := cast(kv.Key, kv.Value); err == nil {
					typed = append(typed, KV[V]{Key: kv.Key, Value: tv})
				}
			}
			got, err := d.Retrieve(ctx, typed)
			if err != nil {
				return nil, err
			}
			out = make([]RetrievedValue, 0, len(got))
			for _, r := range got {
				if !strings.HasPrefix(r.Key, d.KeyPrefix) {
					continue // not ours; a descriptor bug, ignored rather than trusted
				}
				out = append(out, RetrievedValue{Key: r.Key, Descriptor: d.Name, Value: r.Value, Origin: r.Origin, Metadata: r.Metadata})
			}
			return out, nil
		}
	}
	return s.addDescriptor(a)
}

// PanicError is the error a value gets when its descriptor panicked; the
// value ends FAILED with it. The stack is in the log, not in the error.
type PanicError struct {
	Descriptor, Callback, Key string
	Value                     any
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("descriptor %s: %s(%s) panicked: %v", e.Descriptor, e.Callback, e.Key, e.Value)
}

// recovered logs a recovered panic with its stack (one line) and returns
// it as an error.
func (a *adapter) recovered(callback, key string, r any) error {
	e := &PanicError{Descriptor: a.name, Callback: callback, Key: key, Value: r}
	if a.log != nil {
		a.log.Error("descriptor panicked", "descriptor", a.name, "callback", callback, "key", key,
			"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	}
	return e
}

func (a *adapter) recoverInto(err *error, callback, key string) {
	if r := recover(); r != nil {
		*err = a.recovered(callback, key, r)
	}
}

// takePending returns (once) the panic an Equivalent or UpdateWithRecreate
// call on key left for the operation it planned.
func (a *adapter) takePending(key string) error {
	if v, ok := a.pending.LoadAndDelete(key); ok {
		return v.(error)
	}
	return nil
}
