package orchestrator

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
)

// Caps on what etcd may ask for. Every accepted key becomes a scheduler
// value (memory, VPP operations) and a status key, so a writer with access
// to etcd could otherwise exhaust the agent with large or numerous values.
const (
	// DefaultMaxValueBytes bounds one config value. The largest real value
	// (an interface with addresses) is well under 4 KiB.
	DefaultMaxValueBytes = 64 << 10
	// DefaultMaxKeysPerPrefix bounds the keys of one model (interfaces,
	// cross-connects, ...); the agent is sized for 10k cross-connects.
	DefaultMaxKeysPerPrefix = 100000
	// DefaultClientRecvLimit is the etcd client's receive limit: one list
	// page (DefaultListPageSize values) of values at the value cap, plus
	// headroom for keys and headers. etcd's default is 2 GiB.
	DefaultClientRecvLimit = DefaultListPageSize*DefaultMaxValueBytes + 4<<20
	// DefaultMaxInvalidStatus bounds the rejected keys reported one by one
	// (status document and warning).
	DefaultMaxInvalidStatus = 1000
	// DefaultListPageSize is Options.ListPageSize's default.
	DefaultListPageSize = 1000
)

func modelPrefix(rel string) string {
	m, err := models.ModelForKey(rel)
	if err != nil {
		return ""
	}
	return m.KeyPrefix
}

// admit checks the caps for a value of rel before it is parsed. Caller
// holds o.mu.
func (o *Orchestrator) admit(rel string, data []byte) error {
	if max := o.opts.MaxValueBytes; len(data) > max {
		return fmt.Errorf("value of %s is %d bytes, more than the limit of %d bytes", rel, len(data), max)
	}
	if _, have := o.applied[rel]; !have {
		p := modelPrefix(rel)
		if n := o.counts[p]; n >= o.opts.MaxKeysPerPrefix {
			return fmt.Errorf("%s: prefix %s already holds %d keys, the limit; this key is not applied", rel, p, n)
		}
	}
	return nil
}

// setApplied and delApplied keep o.applied and the per-prefix counts
// together. Caller holds o.mu.
func (o *Orchestrator) setApplied(rel string, v proto.Message) {
	if _, have := o.applied[rel]; !have {
		o.counts[modelPrefix(rel)]++
	}
	o.applied[rel] = v
}

func (o *Orchestrator) delApplied(rel string) {
	if _, have := o.applied[rel]; have {
		o.counts[modelPrefix(rel)]--
		delete(o.applied, rel)
	}
}
