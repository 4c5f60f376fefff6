package statseg

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultSocket is where VPP serves its stats segment.
const DefaultSocket = "/run/vpp/stats.sock"

// Limits on what Update accepts; beyond them the input is a bug in the caller,
// not something to lay out in shared memory.
const (
	MaxInterfaces = 1 << 20
	MaxNameLen    = 1024
)

// ErrClosed is returned by Update after Close.
var ErrClosed = errors.New("statseg: segment closed")

// ErrNoSpace means the segment is too small for the vectors being published.
var ErrNoSpace = errors.New("statseg: segment full")

// threads is the number of per-thread counter vectors: vppsim has only a main
// thread, so every counter lives in thread 0, as in a VPP without workers.
const threads = 1

// Option tunes a Segment.
type Option func(*config)

type config struct {
	size   uint64
	grace  time.Duration
	logger *slog.Logger
	now    func() time.Time
}

// WithSize sets the segment size in bytes (default 32 MiB, VPP's default);
// memory is only committed as vectors use it.
func WithSize(n uint64) Option { return func(c *config) { c.size = n } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithReuseGrace sets how long a replaced vector stays untouched before its
// memory is reused (default 1 s), covering readers still walking it.
func WithReuseGrace(d time.Duration) Option { return func(c *config) { c.grace = d } }

// counterStat is a simple or combined counter entry: a vector of per-thread
// pointers, each to a vector of counters indexed by sw_if_index.
type counterStat struct {
	name      string
	dirIndex  uint64
	elemSize  uint64
	threadVec vec
	perThread [threads]vec
}

// Segment is a VPP stats segment served on a unix socket.
type Segment struct {
	log  *slog.Logger
	path string
	fd   int
	m    mem
	ln   *net.UnixListener
	wg   sync.WaitGroup

	mu        sync.Mutex
	closed    bool
	alloc     *allocator
	dir       vec
	dirIndex  map[string]uint64
	simple    []counterStat
	simpleDef []simpleDef
	combined  []counterStat
	combDef   []combinedDef
	perWorker counterStat
	nameVec   vec
	names     []string
	nameBlock []vec
	length    uint64 // elements in every per-interface vector, never shrinks
	heartbeat uint64
}

// New creates the segment and serves it on path (DefaultSocket when empty),
// replacing a stale socket file as VPP does at start.
func New(path string, opts ...Option) (*Segment, error) {
	if path == "" {
		path = DefaultSocket
	}
	cfg := config{size: 32 << 20, grace: time.Second, logger: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.size < 64<<10 {
		return nil, fmt.Errorf("statseg: segment size %d too small (min 64 KiB)", cfg.size)
	}
	page := uint64(unix.Getpagesize())
	cfg.size = roundUp(cfg.size, page)

	fd, err := unix.MemfdCreate("vppsim-stats", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("statseg: memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(cfg.size)); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("statseg: size memfd to %d: %w", cfg.size, err)
	}
	m, err := unix.Mmap(fd, 0, int(cfg.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("statseg: mmap memfd: %w", err)
	}
	s := &Segment{
		log:       cfg.logger.With("component", "statseg", "socket", path),
		path:      path,
		fd:        fd,
		m:         mem(m),
		alloc:     newAllocator(page, cfg.size, cfg.grace, cfg.now), // VPP's heap starts one page in, after the header
		dirIndex:  map[string]uint64{},
		simpleDef: simpleStats(),
		combDef:   combinedStats(),
	}
	if err := s.build(cfg.now()); err != nil {
		s.unmap()
		return nil, err
	}
	if err := s.listen(); err != nil {
		s.unmap()
		return nil, err
	}
	s.log.Info("stats segment serving", "size", cfg.size, "entries", len(s.dirIndex))
	return s, nil
}

// build lays out the header and the directory. Readers can't be connected
// yet, but the segment still goes through in_progress so that its first
// visible epoch is 1: govpp treats epoch 0 as "no access".
func (s *Segment) build(now time.Time) error {
	s.m.store(hdrVersion, segmentVersion)
	s.m.store(hdrBase, segmentBase)
	s.m.store(hdrErrorVector, 0)
	s.m.store(hdrInProgress, 1)

	type entry struct {
		name string
		typ  uint64
	}
	var entries []entry
	entries = append(entries, entry{statNames, dirNameVector})
	for _, d := range s.simpleDef {
		entries = append(entries, entry{d.name, dirCounterSimple})
	}
	for _, d := range s.combDef {
		entries = append(entries, entry{d.name, dirCounterCombine})
	}
	for _, n := range []string{sysVectorRate, sysNumWorkers, sysInputRate, sysLastUpdate,
		sysLastStatsClear, sysHeartbeat, sysBootTime} {
		entries = append(entries, entry{n, dirScalarIndex})
	}
	entries = append(entries, entry{sysVectorPerWorker, dirCounterSimple})

	dir, err := s.newVec(uint64(len(entries)), entrySize)
	if err != nil {
		return fmt.Errorf("statseg: directory: %w", err)
	}
	s.dir = dir
	for i, e := range entries {
		off := dir.data + uint64(i)*entrySize
		s.m.store(off+entryType, e.typ)
		copy(s.m[off+entryName:off+entryName+entryNameMax-1], e.name)
		s.dirIndex[e.name] = uint64(i)
	}
	s.m.setVecLen(dir, uint64(len(entries)))

	if s.nameVec, err = s.newVec(8, 8); err != nil {
		return fmt.Errorf("statseg: %s: %w", statNames, err)
	}
	s.setEntryUnion(statNames, ptr(s.nameVec.data))

	for _, d := range s.simpleDef {
		c, err := s.newCounter(d.name, 8, 8)
		if err != nil {
			return err
		}
		s.simple = append(s.simple, c)
	}
	for _, d := range s.combDef {
		c, err := s.newCounter(d.name, 16, 8)
		if err != nil {
			return err
		}
		s.combined = append(s.combined, c)
	}
	if s.perWorker, err = s.newCounter(sysVectorPerWorker, 8, 1); err != nil {
		return err
	}
	s.m.setVecLen(s.perWorker.perThread[0], 1)
	s.setEntryUnion(sysBootTime, uint64(now.Unix()))

	s.m.store(hdrDirectory, ptr(dir.data))
	s.m.store(hdrEpoch, 1)
	s.m.store(hdrInProgress, 0)
	return nil
}

func (s *Segment) newCounter(name string, elemSize, capElems uint64) (counterStat, error) {
	c := counterStat{name: name, dirIndex: s.dirIndex[name], elemSize: elemSize}
	var err error
	if c.threadVec, err = s.newVec(threads, 8); err != nil {
		return c, fmt.Errorf("statseg: %s: %w", name, err)
	}
	for t := range c.perThread {
		if c.perThread[t], err = s.newVec(capElems, elemSize); err != nil {
			return c, fmt.Errorf("statseg: %s: %w", name, err)
		}
		s.m.store(c.threadVec.data+uint64(t)*8, ptr(c.perThread[t].data))
	}
	s.m.setVecLen(c.threadVec, threads)
	s.setEntryUnion(name, ptr(c.threadVec.data))
	return c, nil
}

// newVec allocates a zeroed vector of length 0 with room for capElems.
func (s *Segment) newVec(capElems, elemSize uint64) (vec, error) {
	b, ok := s.alloc.alloc(blockAlign + capElems*elemSize)
	if !ok {
		return vec{}, fmt.Errorf("%w: no room for %d x %d bytes (in use %d)",
			ErrNoSpace, capElems, elemSize, s.alloc.inUse())
	}
	clear(s.m[b.off : b.off+b.size])
	return vec{data: b.off + blockAlign, capElems: (b.size - blockAlign) / elemSize, elemSize: elemSize, block: b}, nil
}

func (s *Segment) setEntryUnion(name string, v uint64) {
	s.m.store(s.dir.data+s.dirIndex[name]*entrySize+entryUnion, v)
}

func (s *Segment) unmap() {
	if s.m != nil {
		if err := unix.Munmap(s.m); err != nil {
			s.log.Warn("munmap stats segment", "err", err)
		}
		s.m = nil
	}
	if err := unix.Close(s.fd); err != nil {
		s.log.Warn("close stats memfd", "err", err)
	}
}

// Path is the socket the segment is served on.
func (s *Segment) Path() string { return s.path }

// Close stops serving, removes the socket and unmaps the segment; clients
// keep their own mapping of the memfd until they disconnect.
func (s *Segment) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	s.unmap()
	s.log.Info("stats segment closed")
	if err != nil {
		return fmt.Errorf("statseg: close listener %s: %w", s.path, err)
	}
	return nil
}
