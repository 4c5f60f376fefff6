package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v2"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/vppmesh/vppmesh/models"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
	"github.com/vppmesh/vppmesh/plugins/mesh"
)

// The network service mesh in a lab (docs/mesh.md): topology.services holds
// the NetworkServices the lab puts in etcd, and a cnf node whose cmd is
// "endpoint" or "client" has a mesh section saying which service it serves or
// requests, with which labels, on which vpp node. Such a CNF has no links: the
// node's agent chooses the endpoint of each client and wires the memifs (VPP
// the master on a socket per CNF). It shares its vpp node's network namespace
// (netns) or container network (docker), where the agent's etcd answers on
// the loopback; its data path is the memif.
const (
	CNFEndpoint = "endpoint"
	CNFClient   = "client"
)

// MeshSpec is a mesh CNF's part of a node.
type MeshSpec struct {
	// Service is the network service served (endpoint) or requested (client).
	Service string `yaml:"service"`
	// VPP is the vpp node whose agent serves the CNF; default: the lab's
	// only vpp node.
	VPP string `yaml:"vpp,omitempty"`
	// Labels are the endpoint's or the connection's labels, which the
	// service's matches select on.
	Labels map[string]string `yaml:"labels,omitempty"`
}

// maxServiceFile bounds a service file a lab references.
const maxServiceFile = 64 << 10

// ServiceSpec is one network service of a lab: the NetworkService's fields
// inline (protobuf JSON names, written as YAML), or {file: PATH} naming a JSON
// or YAML file with them, relative to the lab file and inside its directory.
// Unknown fields are errors either way.
type ServiceSpec struct {
	File string
	// Fields is the inline value (or the file's, once read).
	Fields map[string]any
}

// UnmarshalYAML keeps the mapping as is: Validate checks it against the model.
func (s *ServiceSpec) UnmarshalYAML(unmarshal func(any) error) error {
	var m map[string]any
	if err := unmarshal(&m); err != nil {
		return fmt.Errorf("a service is a mapping of NetworkService fields or {file: PATH}: %w", err)
	}
	if f, ok := m["file"]; ok {
		path, isStr := f.(string)
		if len(m) != 1 || !isStr {
			return errors.New("a service given by file has only the key file (a path)")
		}
		s.File = path
		return nil
	}
	s.Fields = m
	return nil
}

// MarshalYAML writes the inline form once a file has been read (the lab's
// state keeps the topology without its directory).
func (s ServiceSpec) MarshalYAML() (any, error) {
	if s.Fields == nil && s.File != "" {
		return map[string]any{"file": s.File}, nil
	}
	if s.Fields == nil {
		return map[string]any{}, nil
	}
	return s.Fields, nil
}

// resolveServiceFiles reads every service given by file, relative to dir.
func (t *Topology) resolveServiceFiles(dir string) error {
	var errs []error
	for _, name := range sortedKeys(t.Topology.Services) {
		s := t.Topology.Services[name]
		if s.File == "" || s.Fields != nil {
			continue
		}
		where := "topology.services." + name
		clean := filepath.Clean(s.File)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			errs = append(errs, fmt.Errorf("%s: file %q: want a path inside the lab file's directory", where, s.File))
			continue
		}
		path := filepath.Join(dir, clean)
		st, err := os.Stat(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		if !st.Mode().IsRegular() || st.Size() > maxServiceFile {
			errs = append(errs, fmt.Errorf("%s: file %s: want a regular file of at most %d bytes", where, s.File, maxServiceFile))
			continue
		}
		b, err := os.ReadFile(path)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		var m map[string]any
		// JSON is YAML: one decoder reads both; duplicate keys are errors.
		if err := yaml.UnmarshalStrict(b, &m); err != nil {
			errs = append(errs, fmt.Errorf("%s: file %s: %s", where, s.File, strings.TrimPrefix(err.Error(), "yaml: ")))
			continue
		}
		if m == nil {
			m = map[string]any{}
		}
		s.Fields = m
		t.Topology.Services[name] = s
	}
	return joinLines(errs)
}

// NetworkService decodes a service strictly: protobuf JSON field names,
// unknown fields and wrong types rejected, the model's own checks, and a
// name (when given) equal to the key.
func (s ServiceSpec) NetworkService(name string) (*vppmeshv1.NetworkService, error) {
	if s.Fields == nil && s.File != "" {
		return nil, fmt.Errorf("file %s not read (the lab file's directory is unknown)", s.File)
	}
	b, err := json.Marshal(jsonable(s.Fields))
	if err != nil {
		return nil, err
	}
	ns := &vppmeshv1.NetworkService{}
	if err := (protojson.UnmarshalOptions{}).Unmarshal(b, ns); err != nil {
		return nil, fmt.Errorf("not a NetworkService: %v", err)
	}
	if ns.GetName() != "" && ns.GetName() != name {
		return nil, fmt.Errorf("name %q differs from the key %q", ns.GetName(), name)
	}
	ns.Name = name
	if err := mesh.ValidateService(ns); err != nil {
		return nil, err
	}
	return ns, nil
}

// jsonable turns YAML's map[any]any into JSON objects.
func jsonable(v any) any {
	switch x := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = jsonable(e)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = jsonable(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i := range x {
			out[i] = jsonable(x[i])
		}
		return out
	}
	return v
}

// MeshRole is a cnf node's mesh role: endpoint, client or "" (a memif CNF).
func (n Node) MeshRole() string {
	if n.Kind != KindCNF {
		return ""
	}
	if f := strings.Fields(n.Cmd); len(f) > 0 && (f[0] == CNFEndpoint || f[0] == CNFClient) {
		return f[0]
	}
	return ""
}

// meshVPP is the vpp node a mesh CNF attaches to.
func (t *Topology) meshVPP(n Node) (string, error) {
	if n.Mesh != nil && n.Mesh.VPP != "" {
		v, ok := t.Node(n.Mesh.VPP)
		if !ok || v.Kind != KindVPP {
			return "", fmt.Errorf("mesh.vpp %q is not a vpp node", n.Mesh.VPP)
		}
		return v.Name, nil
	}
	var vpps []string
	for _, o := range t.Nodes() {
		if o.Kind == KindVPP {
			vpps = append(vpps, o.Name)
		}
	}
	switch len(vpps) {
	case 1:
		return vpps[0], nil
	case 0:
		return "", errors.New("a mesh CNF needs a vpp node (its agent wires the connections)")
	}
	return "", fmt.Errorf("the lab has %d vpp nodes: say which one serves this CNF (mesh.vpp)", len(vpps))
}

// cnfManaged are the flags the lab sets for a mesh CNF.
var cnfManaged = []string{"name", "service", "labels", "node", "socket", "etcd", "stats-file", "stats-interval", "id"}

// validateMesh checks the services and the mesh CNFs.
func (t *Topology) validateMesh() []error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, name := range sortedKeys(t.Topology.Services) {
		if err := mesh.ValidName("service name", name); err != nil {
			bad("topology.services.%s: %v", name, err)
			continue
		}
		if _, err := t.Topology.Services[name].NetworkService(name); err != nil {
			bad("topology.services.%s: %v", name, err)
		}
	}
	if t.Topology.Defaults.Mesh != nil {
		bad("topology.defaults: mesh settings belong to a cnf node or kinds.cnf")
	}
	served := map[string]bool{}
	linked := map[string]bool{}
	for _, l := range t.Topology.Links {
		for _, e := range l.Endpoints {
			linked[e.Node] = true
		}
	}
	for _, n := range t.Nodes() {
		if n.Kind == KindCNF && n.MeshRole() == CNFEndpoint && n.Mesh != nil {
			served[n.Mesh.Service] = true
		}
	}
	for _, n := range t.Nodes() {
		where := "node " + n.Name
		role := n.MeshRole()
		if n.Mesh != nil && n.Kind != KindCNF {
			bad("%s: mesh settings on a %s node", where, n.Kind)
			continue
		}
		if n.Kind != KindCNF {
			continue
		}
		if role == "" {
			if n.Mesh != nil {
				bad("%s: mesh settings on a cnf whose cmd is not endpoint or client", where)
			}
			continue
		}
		if n.Mesh == nil {
			bad("%s: a mesh %s needs mesh: {service: NAME}", where, role)
			continue
		}
		if linked[n.Name] {
			bad("%s: a mesh %s has no links (the agent wires its memif)", where, role)
		}
		if err := mesh.ValidName("a mesh CNF's name", n.Name); err != nil {
			bad("%s: %v", where, err)
		}
		if _, ok := t.Topology.Services[n.Mesh.Service]; !ok {
			bad("%s: mesh.service %q is not in topology.services", where, n.Mesh.Service)
		} else if role == CNFClient && !served[n.Mesh.Service] {
			bad("%s: no endpoint of the lab serves %q", where, n.Mesh.Service)
		}
		if _, err := t.meshVPP(n); err != nil {
			bad("%s: %v", where, err)
		}
		for _, k := range sortedKeys(n.Mesh.Labels) {
			v := n.Mesh.Labels[k]
			if k == "" || strings.ContainsAny(k, "=, \t") || strings.ContainsAny(v, "=, \t") {
				bad("%s: mesh.labels %q=%q: keys and values without '=', ',' or blanks (keys not empty)", where, k, v)
			}
		}
		f := strings.Fields(n.Cmd)
		for _, m := range cnfManaged {
			if hasFlag(f[1:], m) {
				bad("%s: cmd sets --%s, which the lab sets for a mesh %s", where, m, role)
			}
		}
	}
	return errs
}

// MeshSocket is a mesh CNF's memif socket: VPP listens on it, one memif id
// per connection.
func (p *Plan) MeshSocket(node string) string {
	return filepath.Join(p.SockDir(), "m-"+node+".sock")
}

// MeshCNFs lists the mesh CNFs of the plan: endpoints first, then clients.
func (p *Plan) MeshCNFs() []*PlanNode {
	var eps, cls []*PlanNode
	for _, n := range p.Nodes {
		switch n.MeshRole() {
		case CNFEndpoint:
			eps = append(eps, n)
		case CNFClient:
			cls = append(cls, n)
		}
	}
	return append(eps, cls...)
}

// MeshVPP is the vpp node serving a mesh CNF.
func (p *Plan) MeshVPP(n *PlanNode) string {
	v, _ := p.Topo.meshVPP(n.Node)
	return v
}

// meshArgs is a mesh CNF's command line: its cmd, then what the lab sets.
func (p *Plan) meshArgs(n *PlanNode, etcd, statsFile string) []string {
	fields := strings.Fields(n.Cmd)
	args := append([]string{}, fields...)
	var labels []string
	for _, k := range sortedKeys(n.Mesh.Labels) {
		labels = append(labels, k+"="+n.Mesh.Labels[k])
	}
	args = append(args, "--name", n.Name, "--service", n.Mesh.Service, "--node", p.MeshVPP(n),
		"--socket", p.MeshSocket(n.Name), "--etcd", etcd)
	if len(labels) > 0 {
		args = append(args, "--labels", strings.Join(labels, ","))
	}
	if fields[0] == CNFClient && !hasFlag(fields, "rate") {
		args = append(args, "--rate", "200") // enough to see every connection carry traffic
	}
	if statsFile != "" {
		args = append(args, "--stats-file", statsFile, "--stats-interval", "200ms")
	}
	return args
}

// ServiceValues are the lab's services as etcd keys and protobuf JSON
// values, sorted by key.
func (p *Plan) ServiceValues() ([][2]string, error) {
	var out [][2]string
	for _, name := range sortedKeys(p.Topo.Topology.Services) {
		ns, err := p.Topo.Topology.Services[name].NetworkService(name)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		b, err := models.Marshal(ns)
		if err != nil {
			return nil, err
		}
		var c bytes.Buffer
		if err := json.Compact(&c, b); err != nil {
			return nil, err
		}
		out = append(out, [2]string{models.MeshKey(models.MeshService, name), c.String()})
	}
	return out, nil
}

// servicesPut says, for up's progress line, how many services a vpp node puts.
func servicesPut(n *PlanNode) string {
	if len(n.Services) == 0 {
		return ""
	}
	return fmt.Sprintf(" and %d network service(s)", len(n.Services))
}

// meshVPPNodes are the vpp nodes serving mesh CNFs, sorted.
func (p *Plan) meshVPPNodes() []string {
	set := map[string]bool{}
	for _, n := range p.MeshCNFs() {
		set[p.MeshVPP(n)] = true
	}
	return sortedKeys(set)
}

// ConnReport is one mesh connection after up: who serves it and the traffic
// of its client (sent, reflections received) and its endpoint (frames
// reflected for it).
type ConnReport struct {
	Connection string `json:"connection"`
	Service    string `json:"service"`
	State      string `json:"state"`
	Endpoint   string `json:"endpoint"`
	Heals      uint32 `json:"heals"`
	Sent       uint64 `json:"sent"`
	Received   uint64 `json:"received"`
	Reflected  uint64 `json:"reflected"`
	Error      string `json:"error,omitempty"`
}

// meshStatus reads a connection's status from the etcd of its vpp node.
func (r *runner) meshStatus(ctx context.Context, n *PlanNode) (*vppmeshv1.ConnectionStatus, error) {
	key := models.MeshKey(models.MeshStatus, n.Name)
	out, err := r.ctl(ctx, r.plan.MeshVPP(n), "kvdb", "get", key)
	if err != nil {
		return nil, err
	}
	out = strings.TrimSpace(out)
	if out == "" {
		return nil, fmt.Errorf("no status for connection %s yet", n.Name)
	}
	var st vppmeshv1.ConnectionStatus
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), &st); err != nil {
		return nil, fmt.Errorf("status of connection %s: %w", n.Name, err)
	}
	return &st, nil
}

// meshStats reads a mesh CNF's stats file.
func (r *runner) meshStats(node string) (*meshSummary, error) {
	b, err := os.ReadFile(r.statsFile(node))
	if err != nil {
		return nil, err
	}
	var s meshSummary
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("stats of %s: %w", node, err)
	}
	return &s, nil
}

// meshSummary is the part of a mesh CNF's stats file the lab reads.
type meshSummary struct {
	Sent        uint64            `json:"sent"`
	Received    uint64            `json:"received"`
	Endpoint    string            `json:"endpoint"`
	Connections map[string]uint64 `json:"connections"`
}

// startMesh starts the mesh CNFs: the endpoints, then, once each has
// registered, the clients (so that the first selection sees every endpoint
// and shares the clients among them), and waits until every connection is
// UP in etcd and has carried traffic both ways.
func (r *runner) startMesh(ctx context.Context, start func(n *PlanNode) error) error {
	cnfs := r.plan.MeshCNFs()
	if len(cnfs) == 0 {
		return nil
	}
	var clients []*PlanNode
	for _, n := range cnfs {
		if n.MeshRole() == CNFClient {
			clients = append(clients, n)
			continue
		}
		if err := start(n); err != nil {
			return err
		}
	}
	for _, n := range cnfs {
		if n.MeshRole() != CNFEndpoint {
			continue
		}
		key := models.MeshKey(models.MeshEndpoint, n.Name)
		if err := r.wait(ctx, "endpoint "+n.Name+" registered", func() error {
			out, err := r.ctl(ctx, r.plan.MeshVPP(n), "kvdb", "get", key)
			if err != nil {
				return err
			}
			if strings.TrimSpace(out) == "" {
				return errors.New("not in etcd yet")
			}
			return nil
		}); err != nil {
			return err
		}
	}
	for _, n := range clients {
		if err := start(n); err != nil {
			return err
		}
	}
	for _, n := range clients {
		if err := r.wait(ctx, "connection "+n.Name+" UP", func() error {
			st, err := r.meshStatus(ctx, n)
			if err != nil {
				return err
			}
			if st.GetState() != vppmeshv1.ConnectionStatus_UP {
				return fmt.Errorf("%s %s", st.GetState(), st.GetError())
			}
			return nil
		}); err != nil {
			return err
		}
		r.log.Info("connection up", "connection", n.Name)
	}
	r.say("mesh: all %d connection(s) UP", len(clients))
	// The burst: each client sends from its first UP on; wait until each
	// has its frames reflected.
	for _, n := range clients {
		if err := r.wait(ctx, "traffic on connection "+n.Name, func() error {
			s, err := r.meshStats(n.Name)
			if err != nil {
				return err
			}
			if s.Received < meshBurst {
				return fmt.Errorf("%d of %d reflections", s.Received, meshBurst)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// meshBurst is how many reflected frames up waits for on each connection.
const meshBurst = 100

// meshReport collects each connection's state and traffic.
func (r *runner) meshReport(ctx context.Context) []ConnReport {
	var out []ConnReport
	reflected := map[string]uint64{}
	for _, n := range r.plan.MeshCNFs() {
		if n.MeshRole() != CNFEndpoint {
			continue
		}
		if s, err := r.meshStats(n.Name); err == nil {
			for id, c := range s.Connections {
				reflected[n.Name+"/"+id] = c
			}
		}
	}
	for _, n := range r.plan.MeshCNFs() {
		if n.MeshRole() != CNFClient {
			continue
		}
		cr := ConnReport{Connection: n.Name, Service: n.Mesh.Service, State: "UNKNOWN"}
		if st, err := r.meshStatus(ctx, n); err == nil {
			cr.State, cr.Endpoint, cr.Heals, cr.Error = st.GetState().String(), st.GetEndpoint(), st.GetHeals(), st.GetError()
		} else {
			cr.Error = err.Error()
		}
		if s, err := r.meshStats(n.Name); err == nil {
			cr.Sent, cr.Received = s.Sent, s.Received
		}
		cr.Reflected = reflected[cr.Endpoint+"/"+n.Name]
		out = append(out, cr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Connection < out[j].Connection })
	return out
}
