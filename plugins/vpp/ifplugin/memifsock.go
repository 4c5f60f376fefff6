package ifplugin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.fd.io/govpp/binapi/memif"
)

// DefaultMemifSocket is the file of VPP's built-in memif socket id 0.
const DefaultMemifSocket = "/run/vpp/memif.sock"

// memifSockets tracks which socket filename VPP knows under which id and how
// many memifs use it. VPP needs a filename registered under an id before a
// memif can use it; we take the lowest free id and drop the registration
// when its last memif goes. One mutex serialises allocation and the VPP
// call, so parallel creates never race for the same id.
type memifSockets struct {
	mu   sync.Mutex
	mem  memif.RPCService
	log  *slog.Logger
	def  string
	byID map[uint32]*memifSocket
}

type memifSocket struct {
	filename string
	refs     int
}

func newMemifSockets(mem memif.RPCService, def string, log *slog.Logger) *memifSockets {
	s := &memifSockets{mem: mem, log: log, def: def}
	s.reset(map[uint32]string{0: def}, nil)
	return s
}

// normalize maps the empty filename to VPP's default socket.
func (s *memifSockets) normalize(filename string) string {
	if filename == "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.byID[0].filename
	}
	return filename
}

// reset replaces the table with what VPP reports (id → filename) and the
// number of memifs on each id.
func (s *memifSockets) reset(files map[uint32]string, refs map[uint32]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID = make(map[uint32]*memifSocket, len(files)+1)
	for id, f := range files {
		s.byID[id] = &memifSocket{filename: f, refs: refs[id]}
	}
	if _, ok := s.byID[0]; !ok {
		s.byID[0] = &memifSocket{filename: s.def}
	}
}

// acquire returns the socket id for filename, registering it in VPP under
// the lowest free id if it is new, and counts one more user.
func (s *memifSockets) acquire(ctx context.Context, filename string) (uint32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if filename == "" {
		filename = s.byID[0].filename
	}
	for id, sock := range s.byID {
		if sock.filename == filename {
			sock.refs++
			return id, nil
		}
	}
	id := uint32(1)
	for s.byID[id] != nil {
		id++
	}
	start := time.Now()
	_, err := s.mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{
		IsAdd: true, SocketID: id, SocketFilename: filename,
	})
	s.log.Debug("vpp call", "msg", "memif_socket_filename_add_del_v2", "add", true, "socket_id", id, "duration", time.Since(start))
	if err != nil {
		return 0, fmt.Errorf("memif_socket_filename_add_del_v2 add id %d %q: %w", id, filename, err)
	}
	s.byID[id] = &memifSocket{filename: filename, refs: 1}
	return id, nil
}

// release counts one user less and removes the registration from VPP when
// none is left (never for id 0, which VPP owns).
func (s *memifSockets) release(ctx context.Context, id uint32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sock, ok := s.byID[id]
	if !ok {
		return nil
	}
	if sock.refs > 0 {
		sock.refs--
	}
	if sock.refs > 0 || id == 0 {
		return nil
	}
	start := time.Now()
	_, err := s.mem.MemifSocketFilenameAddDelV2(ctx, &memif.MemifSocketFilenameAddDelV2{
		IsAdd: false, SocketID: id, SocketFilename: sock.filename,
	})
	s.log.Debug("vpp call", "msg", "memif_socket_filename_add_del_v2", "add", false, "socket_id", id, "duration", time.Since(start))
	if err != nil {
		sock.refs++ // still registered; a retried delete releases it again
		return fmt.Errorf("memif_socket_filename_add_del_v2 del id %d %q: %w", id, sock.filename, err)
	}
	delete(s.byID, id)
	return nil
}

// filename returns the file registered under id.
func (s *memifSockets) filename(id uint32) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sock, ok := s.byID[id]
	if !ok {
		return "", false
	}
	return sock.filename, true
}

// ids returns a snapshot id → filename (tests, status).
func (s *memifSockets) ids() map[uint32]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[uint32]string, len(s.byID))
	for id, sock := range s.byID {
		out[id] = sock.filename
	}
	return out
}
