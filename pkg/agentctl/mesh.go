package agentctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"

	"github.com/vppmesh/vppmesh/models"
	ifmodel "github.com/vppmesh/vppmesh/models/vpp/interfaces"
	vppmeshv1 "github.com/vppmesh/vppmesh/models/vppmesh/v1"
)

// newMeshCommand is `agentctl mesh`: the network service mesh's global
// objects (services, endpoints, connections and their statuses).
func newMeshCommand(c *cli) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "Network services: list services, endpoints and connections; request, close, register",
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "services", Short: "List network services", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return c.meshServices(cmd) },
		},
		&cobra.Command{
			Use: "endpoints", Short: "List registered endpoints and how many connections each serves", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return c.meshEndpoints(cmd) },
		},
		&cobra.Command{
			Use: "connections", Short: "List connections with their status", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error { return c.meshConnections(cmd) },
		},
		newMeshServiceCommand(c),
		newMeshRequestCommand(c),
		&cobra.Command{
			Use: "close ID", Short: "Delete a connection (the agent removes its wiring)", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return c.meshDelete(cmd, models.MeshConnection, args[0])
			},
		},
		newMeshRegisterCommand(c),
	)
	return cmd
}

// linkFlags are the memif / vhost-user flags of request and register.
type linkFlags struct {
	memifSocket, vhostSocket, secret string
	memifID                          uint32
}

func (l *linkFlags) add(cmd *cobra.Command, idHelp bool) {
	f := cmd.Flags()
	f.StringVar(&l.memifSocket, "memif-socket", "", "memif socket (VPP is the master on it)")
	f.StringVar(&l.vhostSocket, "vhost-socket", "", "vhost-user socket instead of memif")
	f.StringVar(&l.secret, "memif-secret", "", "memif secret (never printed)")
	if idHelp {
		f.Uint32Var(&l.memifID, "memif-id", 0, "memif id on the socket")
	}
}

func (l *linkFlags) links() (*ifmodel.MemifLink, *ifmodel.VhostUserLink, error) {
	switch {
	case l.memifSocket != "" && l.vhostSocket != "":
		return nil, nil, errors.New("give --memif-socket or --vhost-socket, not both")
	case l.memifSocket != "":
		return &ifmodel.MemifLink{SocketFilename: l.memifSocket, Id: l.memifID, Secret: l.secret}, nil, nil
	case l.vhostSocket != "":
		return nil, &ifmodel.VhostUserLink{SocketFilename: l.vhostSocket, Server: true}, nil
	}
	return nil, nil, errors.New("--memif-socket or --vhost-socket is required")
}

func parseLabels(in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range in {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--label %q: want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func newMeshServiceCommand(c *cli) *cobra.Command {
	var payload, pool string
	cmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Create or replace a network service (without matches: any endpoint serving it may be chosen)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, ok := vppmeshv1.NetworkService_Payload_value[strings.ToUpper(payload)]
			if !ok {
				return fmt.Errorf("--payload %q: want ETHERNET or IP", payload)
			}
			svc := &vppmeshv1.NetworkService{Name: args[0], Payload: vppmeshv1.NetworkService_Payload(p), IpPool: pool}
			return c.meshPut(cmd, models.MeshService, svc, 0, false)
		},
	}
	cmd.Flags().StringVar(&payload, "payload", "ETHERNET", "ETHERNET or IP")
	cmd.Flags().StringVar(&pool, "ip-pool", "", "IPv4 prefix cut into /31s, one per connection (IP payload)")
	return cmd
}

func newMeshRequestCommand(c *cli) *cobra.Command {
	var id, node string
	var labels []string
	var lf linkFlags
	var ttl time.Duration
	var wait bool
	cmd := &cobra.Command{
		Use:   "request SERVICE --id ID --memif-socket PATH",
		Short: "Request a network service: write a connection; with --ttl keep it under a lease while this runs",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseLabels(labels)
			if err != nil {
				return err
			}
			m, v, err := lf.links()
			if err != nil {
				return err
			}
			if id == "" {
				return errors.New("--id is required")
			}
			conn := &vppmeshv1.Connection{Id: id, NetworkService: args[0], Labels: l, Node: orDefault(node, c.label)}
			if m != nil {
				conn.Link = &vppmeshv1.Connection_Memif{Memif: m}
			} else {
				conn.Link = &vppmeshv1.Connection_VhostUser{VhostUser: v}
			}
			return c.meshPut(cmd, models.MeshConnection, conn, ttl, wait)
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "id", "", "connection id")
	f.StringVar(&node, "node", "", "agent label of the client's node (default --service-label)")
	f.StringArrayVar(&labels, "label", nil, "client label key=value (repeatable)")
	f.DurationVar(&ttl, "ttl", 0, "put the connection under a lease of this TTL and keep it alive until interrupted")
	lf.add(cmd, true)
	waitFlag(cmd, &wait)
	f.Lookup("wait").Usage = "after writing, wait until the connection's status is UP (exit 0), FAILED (exit 1), " +
		"or --timeout passes while PENDING or DOWN (exit 2); with --ttl the lease is revoked if the wait fails"
	return cmd
}

func newMeshRegisterCommand(c *cli) *cobra.Command {
	var node string
	var services, labels []string
	var lf linkFlags
	ttl := 10 * time.Second
	cmd := &cobra.Command{
		Use:   "register NAME --service S --memif-socket PATH",
		Short: "Register an endpoint under a lease and keep it alive while this runs (Ctrl-C ends the registration)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := parseLabels(labels)
			if err != nil {
				return err
			}
			m, v, err := lf.links()
			if err != nil {
				return err
			}
			if len(services) == 0 {
				return errors.New("--service is required")
			}
			if ttl < time.Second {
				return fmt.Errorf("--ttl %s: at least 1s", ttl)
			}
			ep := &vppmeshv1.NetworkServiceEndpoint{Name: args[0], NetworkServices: services, Labels: l, Node: orDefault(node, c.label)}
			if m != nil {
				ep.Link = &vppmeshv1.NetworkServiceEndpoint_Memif{Memif: m}
			} else {
				ep.Link = &vppmeshv1.NetworkServiceEndpoint_VhostUser{VhostUser: v}
			}
			return c.meshPut(cmd, models.MeshEndpoint, ep, ttl, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", "", "agent label of the endpoint's node (default --service-label)")
	f.StringArrayVar(&services, "service", nil, "network service served (repeatable)")
	f.StringArrayVar(&labels, "label", nil, "endpoint label key=value (repeatable)")
	f.DurationVar(&ttl, "ttl", ttl, "lease TTL: the endpoint is gone this long after agentctl stops")
	lf.add(cmd, false)
	return cmd
}

// meshPut writes a mesh value; with ttl > 0 under a lease kept alive until
// the command's context ends (then the lease is revoked, so the value goes
// at once). With wait (connections only) it first waits for the
// connection's status: UP is done, FAILED fails, PENDING and DOWN wait.
func (c *cli) meshPut(cmd *cobra.Command, kind models.MeshKind, v proto.Message, ttl time.Duration, wait bool) error {
	key := models.MeshKey(kind, models.MeshNameOf(v))
	data, err := models.Marshal(v)
	if err != nil {
		return err
	}
	// The same parse the agents do, so a value they would refuse is
	// refused here.
	if _, _, err := models.UnmarshalMesh(key, data); err != nil {
		return err
	}
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	opts := []clientv3.OpOption{clientv3.WithPrevKV()}
	var lease clientv3.LeaseID
	if ttl > 0 {
		l, err := cl.Grant(ctx, int64((ttl+time.Second-1)/time.Second))
		if err != nil {
			return c.etcdErr("grant lease for", key, err)
		}
		lease = l.ID
		opts = append(opts, clientv3.WithLease(lease))
	}
	resp, err := cl.Put(ctx, key, string(data), opts...)
	if err != nil {
		return c.etcdErr("put", key, err)
	}
	shown := redactedJSON(v)
	if err := c.render(KV{Key: key, Value: shown, ModRevision: resp.Header.Revision}, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "OK %s (revision %d)\n", key, resp.Header.Revision)
		return err
	}); err != nil {
		return err
	}
	runCtx := cmd.Context()
	if runCtx == nil {
		runCtx = context.Background()
	}
	// The lease is kept alive from here on, a --wait included.
	var kaDone chan struct{}
	if ttl > 0 {
		ka, err := cl.KeepAlive(runCtx, lease)
		if err != nil {
			return c.etcdErr("keep alive", key, err)
		}
		kaDone = make(chan struct{})
		go func() {
			defer close(kaDone)
			for range ka {
			}
		}()
	}
	revoke := func() error {
		rctx, rcancel := context.WithTimeout(context.Background(), c.timeout)
		defer rcancel()
		if _, err := cl.Revoke(rctx, lease); err != nil {
			return c.etcdErr("revoke lease of", key, err)
		}
		fmt.Fprintf(c.errOut, "%s removed\n", key)
		return nil
	}
	if wait {
		// An unchanged value makes the agent write no new status: its
		// current one is the answer.
		changed := resp.PrevKv == nil
		if !changed {
			_, prev, err := models.UnmarshalMesh(key, resp.PrevKv.Value)
			changed = err != nil || !proto.Equal(prev, v)
		}
		if err := c.waitWritten(runCtx, []Written{{Key: key, Revision: resp.Header.Revision, Changed: changed,
			StatusKey: models.MeshKey(models.MeshStatus, models.MeshNameOf(v))}}); err != nil {
			if ttl > 0 {
				// Nothing keeps the lease once agentctl exits: end it now.
				if rerr := revoke(); rerr != nil {
					fmt.Fprintf(c.errOut, "warning: %v\n", rerr)
				}
			}
			return err
		}
	}
	if ttl == 0 {
		return nil
	}
	fmt.Fprintf(c.errOut, "keeping %s alive (lease %x, TTL %s); interrupt to end it\n", key, int64(lease), ttl)
	<-kaDone
	if runCtx.Err() == nil {
		return fmt.Errorf("lease of %s lost (etcd unreachable for longer than %s?)", key, ttl)
	}
	return revoke()
}

// redactedJSON is a value's JSON with any memif secret replaced.
func redactedJSON(v proto.Message) json.RawMessage {
	v = proto.Clone(v)
	for _, m := range []*ifmodel.MemifLink{
		asEndpoint(v).GetMemif(), asConnection(v).GetMemif(),
	} {
		if m != nil && m.Secret != "" {
			m.Secret = "(redacted)"
		}
	}
	b, _ := models.Marshal(v)
	return b
}

func asEndpoint(v proto.Message) *vppmeshv1.NetworkServiceEndpoint {
	e, _ := v.(*vppmeshv1.NetworkServiceEndpoint)
	return e
}

func asConnection(v proto.Message) *vppmeshv1.Connection {
	c, _ := v.(*vppmeshv1.Connection)
	return c
}

func (c *cli) meshDelete(cmd *cobra.Command, kind models.MeshKind, name string) error {
	cl, err := c.etcdClient()
	if err != nil {
		return err
	}
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	key := models.MeshKey(kind, name)
	resp, err := cl.Delete(ctx, key)
	if err != nil {
		return c.etcdErr("delete", key, err)
	}
	if resp.Deleted == 0 {
		return fmt.Errorf("%s: no such %s", key, kind)
	}
	_, err = fmt.Fprintf(c.out, "deleted %s\n", key)
	return err
}

// meshList reads every value below a mesh prefix; values that do not parse
// are returned as errors by key.
func (c *cli) meshList(cmd *cobra.Command, prefix string) (map[string]proto.Message, map[string]string, error) {
	cl, err := c.etcdClient()
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := c.reqCtx(cmd.Context())
	defer cancel()
	resp, err := cl.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, nil, c.etcdErr("list", prefix, err)
	}
	vals, bad := map[string]proto.Message{}, map[string]string{}
	for _, kv := range resp.Kvs {
		_, name, ok := models.ParseMeshKey(string(kv.Key))
		if !ok {
			continue
		}
		_, v, err := models.UnmarshalMesh(string(kv.Key), kv.Value)
		if err != nil {
			bad[name] = err.Error()
			continue
		}
		vals[name] = v
	}
	return vals, bad, nil
}

func labelsString(l map[string]string) string {
	keys := slices.Sorted(maps.Keys(l))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + l[k]
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ",")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *cli) meshServices(cmd *cobra.Command) error {
	vals, bad, err := c.meshList(cmd, models.MeshServicePrefix)
	if err != nil {
		return err
	}
	var out []json.RawMessage
	var rows [][]string
	for _, name := range meshNames(vals, bad) {
		if why, ok := bad[name]; ok {
			rows = append(rows, []string{name, "INVALID", "-", "-", why})
			continue
		}
		s := vals[name].(*vppmeshv1.NetworkService)
		b, _ := models.Marshal(s)
		out = append(out, b)
		var ms []string
		for _, m := range s.GetMatches() {
			var rs []string
			for _, r := range m.GetRoutes() {
				rs = append(rs, fmt.Sprintf("%s*%d", labelsString(r.GetDestinationSelector()), max(r.GetWeight(), 1)))
			}
			ms = append(ms, labelsString(m.GetSourceSelector())+"→"+dash(strings.Join(rs, "|")))
		}
		rows = append(rows, []string{name, s.GetPayload().String(), dash(s.GetIpPool()), dash(strings.Join(ms, "; ")), ""})
	}
	return c.render(out, func(w io.Writer) error {
		return table(w, []string{"NAME", "PAYLOAD", "IP_POOL", "MATCHES", "ERROR"}, rows)
	})
}

func (c *cli) meshEndpoints(cmd *cobra.Command) error {
	vals, bad, err := c.meshList(cmd, models.MeshEndpointPrefix)
	if err != nil {
		return err
	}
	sts, _, err := c.meshList(cmd, models.MeshStatusPrefix)
	if err != nil {
		return err
	}
	load := map[string]int{}
	for _, v := range sts {
		if e := v.(*vppmeshv1.ConnectionStatus).GetEndpoint(); e != "" {
			load[e]++
		}
	}
	var out []json.RawMessage
	var rows [][]string
	for _, name := range meshNames(vals, bad) {
		if why, ok := bad[name]; ok {
			rows = append(rows, []string{name, "-", "-", "-", "-", "-", why})
			continue
		}
		e := vals[name].(*vppmeshv1.NetworkServiceEndpoint)
		out = append(out, redactedJSON(e))
		link := "-"
		if m := e.GetMemif(); m != nil {
			link = "memif " + m.GetSocketFilename()
		} else if v := e.GetVhostUser(); v != nil {
			link = "vhost-user " + v.GetSocketFilename()
		}
		rows = append(rows, []string{name, e.GetNode(), strings.Join(e.GetNetworkServices(), ","), labelsString(e.GetLabels()), link, fmt.Sprint(load[name]), ""})
	}
	return c.render(out, func(w io.Writer) error {
		return table(w, []string{"NAME", "NODE", "SERVICES", "LABELS", "LINK", "CONNECTIONS", "ERROR"}, rows)
	})
}

// MeshConnection is one row of `mesh connections -o json`.
type MeshConnection struct {
	ID         string          `json:"id"`
	Connection json.RawMessage `json:"connection,omitempty"`
	Status     json.RawMessage `json:"status,omitempty"`
	Error      string          `json:"error,omitempty"`
}

func (c *cli) meshConnections(cmd *cobra.Command) error {
	conns, bad, err := c.meshList(cmd, models.MeshConnectionPrefix)
	if err != nil {
		return err
	}
	sts, _, err := c.meshList(cmd, models.MeshStatusPrefix)
	if err != nil {
		return err
	}
	ids := map[string]bool{}
	for id := range conns {
		ids[id] = true
	}
	for id := range bad {
		ids[id] = true
	}
	for id := range sts {
		ids[id] = true
	}
	var out []MeshConnection
	var rows [][]string
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		mc := MeshConnection{ID: id, Error: bad[id]}
		conn, _ := conns[id].(*vppmeshv1.Connection)
		st, _ := sts[id].(*vppmeshv1.ConnectionStatus)
		if conn != nil {
			mc.Connection = redactedJSON(conn)
		}
		if st != nil {
			mc.Status, _ = models.Marshal(st)
		}
		out = append(out, mc)
		state := "-"
		if st != nil {
			state = st.GetState().String()
		}
		svc, node := conn.GetNetworkService(), conn.GetNode()
		if conn == nil {
			svc, node = st.GetNetworkService(), st.GetClientNode()
		}
		// The endpoint's node, and the connection's VNI when it crosses
		// nodes over VXLAN ("-" for a same-node connection).
		vni := "-"
		if x := st.GetVxlan(); x != nil {
			vni = fmt.Sprint(x.GetVni())
		}
		links := "-"
		if st.GetClientLink().GetInterface() != "" {
			links = linkCell(st.GetClientLink()) + " ↔ " + linkCell(st.GetEndpointLink())
		}
		why := st.GetError()
		if mc.Error != "" {
			why = mc.Error
		}
		rows = append(rows, []string{id, dash(svc), dash(node), state, dash(st.GetEndpoint()), dash(st.GetEndpointNode()), vni, links,
			dash(st.GetIpContext().GetClientIp()), fmt.Sprint(st.GetHeals()), why})
	}
	return c.render(out, func(w io.Writer) error {
		return table(w, []string{"ID", "SERVICE", "NODE", "STATE", "ENDPOINT", "ENDPOINT_NODE", "VNI", "LINKS", "CLIENT_IP", "HEALS", "REASON"}, rows)
	})
}

func linkCell(l *vppmeshv1.LinkStatus) string {
	s := l.GetInterface()
	if m := l.GetMemif(); m != nil {
		s += fmt.Sprintf("(memif %d)", m.GetId())
	}
	if l.GetUp() {
		return s + " up"
	}
	return s + " down"
}

func meshNames(vals map[string]proto.Message, bad map[string]string) []string {
	var out []string
	for k := range vals {
		out = append(out, k)
	}
	for k := range bad {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
