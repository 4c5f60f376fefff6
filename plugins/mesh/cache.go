package mesh

import (
	"log/slog"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// cache is the controller's view of the global mesh keys. Only the
// controller's loop goroutine touches it.
type cache struct {
	services    map[string]*vppmeshv1.NetworkService
	badServices map[string]string // name → why the value is refused
	endpoints   map[string]*vppmeshv1.NetworkServiceEndpoint
	endpointRev map[string]int64 // mod revision: a re-registration clears avoidance
	// endpointLease is the lease each endpoint key is held by; leaseGone
	// the followed leases that ran out before etcd deleted their keys
	// (leases.go): their endpoints are not selected or kept.
	endpointLease map[string]int64
	leaseGone     map[int64]bool
	conns         map[string]*vppmeshv1.Connection
	badConns      map[string]string                      // id → why the value is refused (parse error)
	status        map[string]*vppmeshv1.ConnectionStatus // written through setStatus/delStatus
	statusRev     map[string]int64                       // mod revision of each status key
	allocs        map[string]string                      // alloc key (below MeshAllocPrefix) → connection id; written through setAlloc/delAlloc
	byOwner       map[string]map[string]bool             // connection id → its alloc keys (index of allocs)
	epLoad        map[string]int                         // endpoint → statuses naming it (index of status)
	agents        map[string]bool                        // live agent labels
	nodes         map[string]*vppmeshv1.MeshNode         // node label → its VXLAN underlay
	badNodes      map[string]string                      // node label → why its value is refused
	sides         map[string]*vppmeshv1.ConnectionSide
	sideRev       map[string]int64 // mod revision of each side key
	// ahead holds the keys the controller applied itself (its own
	// transactions, re-reads) before the watch brought them: key → the
	// revision applied. A watch event at or below it is older news and
	// is skipped, so a late event never rolls the cache back (a status
	// rolled back to an old revision makes the next write lose its
	// compare). Entries go once the watch has passed their revision.
	ahead map[string]int64
}

func newCache() *cache {
	return &cache{
		services:      map[string]*vppmeshv1.NetworkService{},
		badServices:   map[string]string{},
		endpoints:     map[string]*vppmeshv1.NetworkServiceEndpoint{},
		endpointRev:   map[string]int64{},
		endpointLease: map[string]int64{},
		leaseGone:     map[int64]bool{},
		conns:         map[string]*vppmeshv1.Connection{},
		badConns:      map[string]string{},
		status:        map[string]*vppmeshv1.ConnectionStatus{},
		statusRev:     map[string]int64{},
		allocs:        map[string]string{},
		byOwner:       map[string]map[string]bool{},
		epLoad:        map[string]int{},
		agents:        map[string]bool{},
		nodes:         map[string]*vppmeshv1.MeshNode{},
		badNodes:      map[string]string{},
		sides:         map[string]*vppmeshv1.ConnectionSide{},
		sideRev:       map[string]int64{},
		ahead:         map[string]int64{},
	}
}

// applyOwn applies a value the controller wrote (or read) itself at
// revision rev, ahead of the watch.
func (c *cache) applyOwn(log *slog.Logger, key string, data []byte, rev int64, del bool) {
	if rev > c.ahead[key] {
		c.ahead[key] = rev
	}
	c.apply(log, key, data, rev, del)
}

// applyWatched applies a watch event unless the cache already holds that
// key at the event's revision or later. It reports whether it applied it.
func (c *cache) applyWatched(log *slog.Logger, key string, data []byte, modRev int64, del bool) bool {
	if r, ok := c.ahead[key]; ok && modRev <= r {
		return false
	}
	c.apply(log, key, data, modRev, del)
	return true
}

// watchedUpTo forgets the keys applied ahead at or below rev: the watch
// has delivered every event up to rev (events come in revision order, and
// one revision's events in one response).
func (c *cache) watchedUpTo(rev int64) {
	for k, r := range c.ahead {
		if r <= rev {
			delete(c.ahead, k)
		}
	}
}

// apply records one key's value (nil data with del deletes it). It never
// fails: a value that does not parse is remembered as refused.
func (c *cache) apply(log *slog.Logger, key string, data []byte, modRev int64, del bool) {
	switch {
	case strings.HasPrefix(key, models.MeshAllocPrefix):
		rel := strings.TrimPrefix(key, models.MeshAllocPrefix)
		if del {
			c.delAlloc(rel)
		} else {
			c.setAlloc(rel, string(data))
		}
		return
	case strings.HasPrefix(key, models.MeshAgentPrefix):
		label := strings.TrimPrefix(key, models.MeshAgentPrefix)
		if del {
			delete(c.agents, label)
		} else {
			c.agents[label] = true
		}
		return
	}
	kind, name, ok := models.ParseMeshKey(key)
	if !ok {
		log.Debug("mesh key ignored", "key", key)
		return
	}
	if del {
		switch kind {
		case models.MeshService:
			delete(c.services, name)
			delete(c.badServices, name)
		case models.MeshEndpoint:
			delete(c.endpoints, name)
			delete(c.endpointRev, name)
		case models.MeshConnection:
			delete(c.conns, name)
			delete(c.badConns, name)
		case models.MeshStatus:
			c.delStatus(name)
			delete(c.statusRev, name)
		case models.MeshNodeKind:
			delete(c.nodes, name)
			delete(c.badNodes, name)
		case models.MeshSide:
			delete(c.sides, name)
			delete(c.sideRev, name)
		}
		return
	}
	_, v, err := models.UnmarshalMesh(key, data)
	if err != nil {
		log.Warn("mesh value refused", "key", key, "error", redact(err.Error()))
	}
	switch kind {
	case models.MeshService:
		delete(c.services, name)
		delete(c.badServices, name)
		if err == nil {
			err = ValidateService(v.(*vppmeshv1.NetworkService))
		}
		if err != nil {
			c.badServices[name] = redact(err.Error())
		} else {
			c.services[name] = v.(*vppmeshv1.NetworkService)
		}
	case models.MeshEndpoint:
		delete(c.endpoints, name)
		if err == nil {
			ep := v.(*vppmeshv1.NetworkServiceEndpoint)
			if verr := ValidateEndpoint(ep); verr != nil {
				log.Warn("mesh endpoint refused", "key", key, "error", verr)
			} else {
				c.endpoints[name] = ep
				c.endpointRev[name] = modRev
			}
		}
	case models.MeshConnection:
		delete(c.conns, name)
		delete(c.badConns, name)
		if err != nil {
			c.badConns[name] = redact(err.Error())
		} else {
			c.conns[name] = v.(*vppmeshv1.Connection)
		}
	case models.MeshStatus:
		if err != nil {
			// A status nobody can read is as good as none; its owner
			// rewrites it (the revision guard still applies).
			c.delStatus(name)
		} else {
			c.setStatus(name, v.(*vppmeshv1.ConnectionStatus))
		}
		c.statusRev[name] = modRev
	case models.MeshNodeKind:
		delete(c.nodes, name)
		delete(c.badNodes, name)
		if err == nil {
			err = ValidateNode(v.(*vppmeshv1.MeshNode))
		}
		if err != nil {
			log.Warn("mesh node refused", "key", key, "error", err)
			c.badNodes[name] = err.Error()
		} else {
			c.nodes[name] = v.(*vppmeshv1.MeshNode)
		}
	case models.MeshSide:
		if err != nil {
			delete(c.sides, name) // as good as none; its writer rewrites it
		} else {
			c.sides[name] = v.(*vppmeshv1.ConnectionSide)
		}
		c.sideRev[name] = modRev
	}
}

// reach says why node cannot be wired to over VXLAN ("" when it can): it
// needs a valid MeshNode.
func (c *cache) reach(node string) string {
	if c.nodes[node] != nil {
		return ""
	}
	if why, bad := c.badNodes[node]; bad {
		return "its VXLAN underlay is invalid: " + why
	}
	return "no VXLAN underlay (" + models.MeshNodePrefix + node + ")"
}

// setAlloc records alloc key k as held by connection owner.
func (c *cache) setAlloc(k, owner string) {
	if was, ok := c.allocs[k]; ok {
		c.dropOwned(was, k)
	}
	c.allocs[k] = owner
	if c.byOwner[owner] == nil {
		c.byOwner[owner] = map[string]bool{}
	}
	c.byOwner[owner][k] = true
}

// delAlloc forgets alloc key k.
func (c *cache) delAlloc(k string) {
	if was, ok := c.allocs[k]; ok {
		c.dropOwned(was, k)
		delete(c.allocs, k)
	}
}

func (c *cache) dropOwned(owner, k string) {
	delete(c.byOwner[owner], k)
	if len(c.byOwner[owner]) == 0 {
		delete(c.byOwner, owner)
	}
}

// setStatus records connection id's status.
func (c *cache) setStatus(id string, st *vppmeshv1.ConnectionStatus) {
	c.delStatus(id)
	c.status[id] = st
	if ep := st.GetEndpoint(); ep != "" {
		c.epLoad[ep]++
	}
}

// delStatus forgets connection id's status.
func (c *cache) delStatus(id string) {
	old, ok := c.status[id]
	if !ok {
		return
	}
	delete(c.status, id)
	if ep := old.GetEndpoint(); ep != "" {
		if c.epLoad[ep]--; c.epLoad[ep] <= 0 {
			delete(c.epLoad, ep)
		}
	}
}

// allocsOf returns the allocation keys held by a connection (a copy).
func (c *cache) allocsOf(id string) map[string]bool {
	out := make(map[string]bool, len(c.byOwner[id]))
	for k := range c.byOwner[id] {
		out[k] = true
	}
	return out
}

// load counts the connections each endpoint serves, by status (a copy).
func (c *cache) load() map[string]int {
	out := make(map[string]int, len(c.epLoad))
	for ep, n := range c.epLoad {
		out[ep] = n
	}
	return out
}

// leader is the live agent with the lowest label: it answers for
// connections no live agent owns.
func (c *cache) leader() string {
	best := ""
	for a := range c.agents {
		if best == "" || a < best {
			best = a
		}
	}
	return best
}

func cloneStatus(s *vppmeshv1.ConnectionStatus) *vppmeshv1.ConnectionStatus {
	if s == nil {
		return nil
	}
	return proto.Clone(s).(*vppmeshv1.ConnectionStatus)
}

// redact removes a memif secret from a parse error that quotes the value.
func redact(msg string) string {
	i := strings.Index(msg, "secret")
	if i < 0 {
		return msg
	}
	return msg[:i] + "secret: (redacted)"
}
