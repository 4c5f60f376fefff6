package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// State is what a lab made, written to <dir>/state.json before each thing is
// made, so that down removes everything even after an up that failed or was
// killed halfway.
type State struct {
	Lab     string `json:"lab"`
	Runtime string `json:"runtime"`
	Dir     string `json:"dir"`
	File    string `json:"file,omitempty"`
	// Topology is the file as up read it (status needs it even when the
	// file has changed or gone).
	Topology   string      `json:"topology,omitempty"`
	Namespaces []string    `json:"namespaces,omitempty"`
	Procs      []ProcState `json:"procs,omitempty"`
	Containers []string    `json:"containers,omitempty"`
	Up         bool        `json:"up"` // up finished
	// DockerHost is the daemon the docker runtime used (empty: the default).
	DockerHost string `json:"docker_host,omitempty"`
	// Nodes maps a node to its namespace (netns) or container (docker), so
	// status and exec find it.
	Nodes map[string]string `json:"nodes,omitempty"`

	mu   sync.Mutex
	path string
}

// ProcState is one process the netns runtime started.
type ProcState struct {
	Node  string `json:"node"`
	Name  string `json:"name"`
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc/<pid>/stat starttime: tells a reused pid apart
	Netns string `json:"netns"`
}

// StateFile is the state's path in a lab directory.
func StateFile(dir string) string { return filepath.Join(dir, "state.json") }

// LoadState reads a lab directory's state.
func LoadState(dir string) (*State, error) {
	b, err := os.ReadFile(StateFile(dir))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no lab in %s (no state.json): is it up?", dir)
		}
		return nil, err
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", StateFile(dir), err)
	}
	s.path = StateFile(dir)
	if s.DockerHost != "" && os.Getenv("DOCKER_HOST") == "" {
		// status, exec and down talk to the daemon up used.
		os.Setenv("DOCKER_HOST", s.DockerHost)
	}
	return &s, nil
}

func (s *State) update(f func(*State)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	tmp := s.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return os.Rename(tmp, s.path)
}

// procStart returns the starttime field of /proc/<pid>/stat and whether the
// process is alive (not a zombie).
func procStart(pid int) (uint64, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// comm may contain spaces: fields start after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is state (field 3); starttime is field 22 → f[19].
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, false
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, false
	}
	return st, true
}

// alive reports whether p is still the process the lab started.
func (p ProcState) alive() bool {
	st, ok := procStart(p.Pid)
	return ok && st == p.Start
}

// detached makes a child its own session leader: it outlives the lab command
// and no terminal signal reaches it.
func detached() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }
