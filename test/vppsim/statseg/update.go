package statseg

import (
	"fmt"
	"strings"
)

// Update publishes a full snapshot of the interfaces: a sw_if_index absent
// from ifaces has no name and zero counters afterwards. Counter values change
// in place, as VPP's workers change them; adding interfaces, growing vectors
// and renaming happen under in_progress and end with a new epoch, so readers
// holding a directory re-read it. On error the segment is left as it was.
func (s *Segment) Update(ifaces []InterfaceCounters) error {
	rows, n, err := index(ifaces)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	newLen := max(s.length, n)

	var p plan
	if err := s.prepare(&p, rows, newLen); err != nil {
		for _, v := range p.fresh {
			s.alloc.release(v.block)
		}
		return err
	}
	structural := newLen != s.length || p.structural
	if structural {
		// VPP moves the epoch only at unlock. govpp's UpdateDir compares the
		// epoch before it waits out in_progress, so a reader arriving during
		// the change would walk the new vectors with its old directory and
		// fail; moving the epoch here too sends it to re-read the directory.
		s.m.store(hdrInProgress, 1)
		s.m.store(hdrEpoch, s.m.load(hdrEpoch)+1)
	}
	s.apply(&p, newLen)
	s.writeValues(rows, newLen)
	if structural {
		s.m.store(hdrEpoch, s.m.load(hdrEpoch)+1)
		s.m.store(hdrInProgress, 0)
	}
	for _, v := range p.old {
		s.alloc.retire(v.block)
	}
	s.heartbeat++
	s.setEntryUnion(sysHeartbeat, s.heartbeat)
	s.setEntryUnion(sysLastUpdate, uint64(s.alloc.now().Unix()))
	if structural {
		s.log.Debug("stats segment layout changed", "interfaces", len(ifaces), "vector_len", newLen,
			"epoch", s.m.load(hdrEpoch), "in_use", s.alloc.inUse())
	}
	return nil
}

// index validates the snapshot and orders it by sw_if_index.
func index(ifaces []InterfaceCounters) ([]*InterfaceCounters, uint64, error) {
	var n uint64
	for i := range ifaces {
		c := &ifaces[i]
		switch {
		case c.SwIfIndex >= MaxInterfaces:
			return nil, 0, fmt.Errorf("statseg: interface %q: sw_if_index %d beyond %d", c.Name, c.SwIfIndex, MaxInterfaces)
		case c.Name == "":
			return nil, 0, fmt.Errorf("statseg: sw_if_index %d: empty name", c.SwIfIndex)
		case len(c.Name) > MaxNameLen || strings.IndexByte(c.Name, 0) >= 0:
			return nil, 0, fmt.Errorf("statseg: sw_if_index %d: name of %d bytes is too long or holds NUL", c.SwIfIndex, len(c.Name))
		}
		n = max(n, uint64(c.SwIfIndex)+1)
	}
	rows := make([]*InterfaceCounters, n)
	for i := range ifaces {
		c := &ifaces[i]
		if rows[c.SwIfIndex] != nil {
			return nil, 0, fmt.Errorf("statseg: sw_if_index %d listed twice (%q, %q)", c.SwIfIndex, rows[c.SwIfIndex].Name, c.Name)
		}
		rows[c.SwIfIndex] = c
	}
	return rows, n, nil
}

// plan is what an Update allocates before touching anything readers see, so
// that running out of space fails cleanly.
type plan struct {
	structural bool
	fresh      []vec // allocated for this update
	old        []vec // replaced, to retire once published
	simple     [][threads]vec
	combined   [][threads]vec
	nameVec    vec
	names      map[uint64]vec // new name vectors; a zero vec clears the name
}

func (s *Segment) prepare(p *plan, rows []*InterfaceCounters, newLen uint64) error {
	grow := func(cur vec) (vec, error) {
		if newLen <= cur.capElems {
			return cur, nil
		}
		v, err := s.newVec(growCap(newLen), cur.elemSize)
		if err != nil {
			return vec{}, err
		}
		p.fresh = append(p.fresh, v)
		return v, nil
	}
	for _, set := range []struct {
		stats []counterStat
		out   *[][threads]vec
	}{{s.simple, &p.simple}, {s.combined, &p.combined}} {
		for _, c := range set.stats {
			var vs [threads]vec
			for t := range vs {
				v, err := grow(c.perThread[t])
				if err != nil {
					return fmt.Errorf("statseg: grow %s to %d: %w", c.name, newLen, err)
				}
				vs[t] = v
			}
			*set.out = append(*set.out, vs)
		}
	}
	v, err := grow(s.nameVec)
	if err != nil {
		return fmt.Errorf("statseg: grow %s to %d: %w", statNames, newLen, err)
	}
	p.nameVec = v

	p.names = map[uint64]vec{}
	for i := uint64(0); i < newLen; i++ {
		var want, have string
		if i < uint64(len(rows)) && rows[i] != nil {
			want = rows[i].Name
		}
		if i < uint64(len(s.names)) {
			have = s.names[i]
		}
		if want == have {
			continue
		}
		p.structural = true
		if want == "" {
			p.names[i] = vec{}
			continue
		}
		nv, err := s.newVec(uint64(len(want))+1, 1)
		if err != nil {
			return fmt.Errorf("statseg: %s[%d] %q: %w", statNames, i, want, err)
		}
		p.fresh = append(p.fresh, nv)
		copy(s.m[nv.data:], want)
		s.m.setVecLen(nv, uint64(len(want))+1) // VPP's name vectors keep the NUL
		p.names[i] = nv
	}
	return nil
}

// growCap doubles like VPP's vec_validate so that adding interfaces one by
// one reallocates a logarithmic number of times.
func growCap(n uint64) uint64 {
	c := uint64(8)
	for c < n {
		c *= 2
	}
	return c
}

// apply publishes the planned vectors; the caller holds in_progress when any
// of them is new.
func (s *Segment) apply(p *plan, newLen uint64) {
	swap := func(c *counterStat, vs [threads]vec) {
		for t, v := range vs {
			if v.data != c.perThread[t].data {
				s.m.setVecLen(v, newLen)
				s.m.store(c.threadVec.data+uint64(t)*8, ptr(v.data))
				p.old = append(p.old, c.perThread[t])
				c.perThread[t] = v
			} else {
				s.m.setVecLen(v, newLen)
			}
		}
	}
	for i := range s.simple {
		swap(&s.simple[i], p.simple[i])
	}
	for i := range s.combined {
		swap(&s.combined[i], p.combined[i])
	}

	if p.nameVec.data != s.nameVec.data {
		// Carry the existing name pointers into the bigger vector.
		for i := uint64(0); i < s.length; i++ {
			s.m.store(p.nameVec.data+i*8, s.m.load(s.nameVec.data+i*8))
		}
		s.m.setVecLen(p.nameVec, newLen)
		s.setEntryUnion(statNames, ptr(p.nameVec.data))
		p.old = append(p.old, s.nameVec)
		s.nameVec = p.nameVec
	} else {
		s.m.setVecLen(s.nameVec, newLen)
	}
	for uint64(len(s.names)) < newLen {
		s.names = append(s.names, "")
		s.nameBlock = append(s.nameBlock, vec{})
	}
	for i, nv := range p.names {
		s.m.store(s.nameVec.data+i*8, ptr(nv.data))
		if s.nameBlock[i].data != 0 {
			p.old = append(p.old, s.nameBlock[i])
		}
		s.nameBlock[i] = nv
		s.names[i] = s.nameOf(nv)
	}
	s.length = newLen
}

// nameOf reads back a name vector written by prepare, without its NUL.
func (s *Segment) nameOf(v vec) string {
	if v.data == 0 {
		return ""
	}
	b := s.m[v.data : v.data+v.capElems]
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

// writeValues stores every counter of every index below newLen.
func (s *Segment) writeValues(rows []*InterfaceCounters, newLen uint64) {
	var zero InterfaceCounters
	for i := uint64(0); i < newLen; i++ {
		row := &zero
		if i < uint64(len(rows)) && rows[i] != nil {
			row = rows[i]
		}
		for k, d := range s.simpleDef {
			s.m.store(s.simple[k].perThread[0].data+i*8, d.get(row))
		}
		for k, d := range s.combDef {
			v := d.get(row)
			off := s.combined[k].perThread[0].data + i*16
			s.m.store(off, v.Packets)
			s.m.store(off+8, v.Bytes)
		}
	}
}
