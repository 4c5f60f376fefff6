package vhostuser

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// FuzzMessages parses a stream of vhost-user messages and applies each to a
// port with no socket, then runs both bursts: whatever the bytes, nothing may
// panic and the port must stay consistent. SET_MEM_TABLE receives a real
// 64 KiB memfd so that ring translation and the data path are reached.
// Seeds live in testdata/fuzz/FuzzMessages; run with
// go test -fuzz FuzzMessages ./test/vppsim/vhostuser/
func FuzzMessages(f *testing.F) {
	memfd, err := unix.MemfdCreate("vhost-fuzz", unix.MFD_CLOEXEC)
	if err != nil {
		f.Fatal(err)
	}
	if err := unix.Ftruncate(memfd, 64<<10); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { unix.Close(memfd) })
	f.Add(fuzzStream(msg(reqGetFeatures, nil), msg(reqSetFeatures, le64(1<<featVersion1|1<<featMrgRxbuf))))

	var mu sync.Mutex // the fuzz engine may run the function concurrently
	f.Fuzz(func(t *testing.T, data []byte) {
		mu.Lock()
		defer mu.Unlock()
		p := &Port{cfg: Config{MaxQueuePairs: 2}, log: quietLogger(), rxReady: make(chan struct{}, 1), one: [8]byte{1}}
		p.resetLocked()
		defer func() {
			p.mu.Lock()
			p.resetLocked()
			p.mu.Unlock()
		}()
		bufs := makeBufs(4, 256)
		frames := [][]byte{make([]byte, 100), make([]byte, 600)}
		for len(data) >= headerSize {
			h, err := parseHeader(data)
			if err != nil || int(h.Size) > len(data)-headerSize {
				return
			}
			pl := data[headerSize : headerSize+int(h.Size)]
			data = data[headerSize+int(h.Size):]
			var fds []int
			if h.Request == reqSetMemTable {
				fd, err := unix.Dup(memfd)
				if err != nil {
					t.Fatal(err)
				}
				fds = []int{fd}
			}
			p.mu.Lock()
			_, err = p.apply(h, pl, fds)
			if err == nil {
				err = p.refreshLocked()
			}
			p.mu.Unlock()
			closeFDs(fds)
			if err != nil {
				return
			}
			p.TxBurst(frames)
			p.RxBurst(bufs)
			if p.broken.Load() {
				return
			}
		}
	})
}

func msg(req uint32, payload []byte) []byte {
	b := make([]byte, headerSize+len(payload))
	putHeader(b, header{Request: req, Flags: flagVersion, Size: uint32(len(payload))})
	copy(b[headerSize:], payload)
	return b
}

func fuzzStream(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(out, m...)
	}
	return out
}

// fuzzSeeds are the inputs of the committed corpus (testdata/fuzz/FuzzMessages);
// TestFuzzSeedCorpus keeps the files equal to them.
func fuzzSeeds() map[string][]byte {
	region := func(gpa, size, ua, off uint64) []byte {
		p := state(1, 0)
		for _, v := range []uint64{gpa, size, ua, off} {
			p = binary.LittleEndian.AppendUint64(p, v)
		}
		return p
	}
	addr := func(idx uint32, desc, used, avail uint64) []byte {
		p := state(idx, 0)
		for _, v := range []uint64{desc, used, avail, 0} {
			p = binary.LittleEndian.AppendUint64(p, v)
		}
		return p
	}
	ring := func(idx uint32, base uint64) [][]byte {
		return [][]byte{
			msg(reqSetVringNum, state(idx, 64)),
			msg(reqSetVringBase, state(idx, 0)),
			msg(reqSetVringAddr, addr(idx, 0x100000+base, 0x100000+base+0x800, 0x100000+base+0x400)),
			msg(reqSetVringKick, le64(uint64(idx)|vringNoFD)),
			msg(reqSetVringEnable, state(idx, 1)),
		}
	}
	setup := [][]byte{
		msg(reqGetFeatures, nil),
		msg(reqSetFeatures, le64(1<<featVersion1|1<<featMrgRxbuf|1<<featProtocolFeatures)),
		msg(reqSetProtocolFeatures, le64(1<<protoReplyAck)),
		msg(reqSetMemTable, region(0x1000, 0x10000, 0x100000, 0)),
	}
	full := append(append(append([][]byte{}, setup...), ring(0, 0)...), ring(1, 0x1000)...)
	return map[string][]byte{
		"features":      fuzzStream(msg(reqGetFeatures, nil), msg(reqSetFeatures, le64(1<<featVersion1))),
		"protocol":      fuzzStream(msg(reqGetProtocolFeatures, nil), msg(reqSetProtocolFeatures, le64(3)), msg(reqGetQueueNum, nil)),
		"mem_table":     fuzzStream(setup...),
		"rings_running": fuzzStream(full...),
		"ring_stop":     fuzzStream(append(full, msg(reqGetVringBase, state(1, 0)), msg(reqResetOwner, nil))...),
		"bad_region":    fuzzStream(msg(reqSetMemTable, region(0x1000, 0x20000, 0x100000, 0))),
		"bad_version":   {1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0},
		"log_base":      fuzzStream(msg(reqSetLogBase, make([]byte, 16))),
		"kick_nofd":     fuzzStream(msg(reqSetVringKick, le64(vringNoFD|3))),
	}
}

// TestFuzzSeedCorpus checks the committed corpus matches fuzzSeeds, and
// rewrites it with -update-fuzz-seeds.
func TestFuzzSeedCorpus(t *testing.T) {
	for target, seeds := range map[string]map[string][]byte{"FuzzMessages": fuzzSeeds(), "FuzzRings": fuzzRingSeeds()} {
		dir := filepath.Join("testdata", "fuzz", target)
		for name, data := range seeds {
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			path := filepath.Join(dir, name)
			if *updateFuzzSeeds {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Fatalf("seed %s missing or stale (err %v): run go test -run TestFuzzSeedCorpus -update-fuzz-seeds", path, err)
			}
		}
	}
}

var updateFuzzSeeds = flag.Bool("update-fuzz-seeds", false, "rewrite testdata/fuzz/FuzzMessages")
