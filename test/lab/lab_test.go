package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newLab(t *testing.T, opts Options) *Lab {
	t.Helper()
	if opts.Name == "" {
		opts.Name = t.Name()
	}
	l, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	if ok, why := l.Netns(); !ok {
		t.Logf("lab without namespaces: %s", why)
	}
	return l
}

func netnsOf(t *testing.T, l *Lab, ns *Namespace) string {
	t.Helper()
	p, err := l.Start(context.Background(), ProcSpec{Name: "readlink", Namespace: ns, Path: "/bin/sh", Args: []string{"-c", "readlink /proc/self/ns/net"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatalf("%v: %s", err, p.Stderr())
	}
	return strings.TrimSpace(p.Stdout())
}

func TestNamespacesIsolateOrSayWhy(t *testing.T) {
	l := newLab(t, Options{})
	host, _ := os.Readlink("/proc/self/ns/net")
	a, err := l.AddNamespace(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.AddNamespace(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	na, nb := netnsOf(t, l, a), netnsOf(t, l, b)
	ok, why := l.Netns()
	if !ok {
		if os.Geteuid() != 0 && !strings.Contains(why, "needs root for network namespaces") {
			t.Fatalf("reason %q does not say root is needed", why)
		}
		if na != host || nb != host {
			t.Fatalf("fallback should run in the host namespace %s: got %s, %s", host, na, nb)
		}
		return
	}
	if na == host || nb == host || na == nb {
		t.Fatalf("namespaces not distinct: host %s a %s b %s", host, na, nb)
	}
	if !strings.HasPrefix(a.Name, "vppmesh-testnamespacesisolateorsaywhy-") {
		t.Fatalf("namespace name %q", a.Name)
	}
	// Loopback is up in each namespace, as in a container.
	p, err := l.Start(context.Background(), ProcSpec{Name: "lo", Namespace: a, Path: "ip", Args: []string{"-o", "link", "show", "lo"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.Stdout(), "UP") {
		t.Fatalf("loopback not up: %s", p.Stdout())
	}
}

func TestCloseStopsProcessesAndRemovesEverything(t *testing.T) {
	l, err := New(context.Background(), Options{Name: "close", StopGrace: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := l.AddNamespace(context.Background(), "x")
	if err != nil {
		t.Fatal(err)
	}
	polite, err := l.Start(context.Background(), ProcSpec{Name: "sleep", Namespace: ns, Path: "sleep", Args: []string{"60"}})
	if err != nil {
		t.Fatal(err)
	}
	stubborn, err := l.Start(context.Background(), ProcSpec{Name: "stubborn", Namespace: ns, Path: "/bin/sh",
		Args: []string{"-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`}})
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(stubborn.Stdout(), "ready") { // the trap must be set before Close signals
		time.Sleep(10 * time.Millisecond)
	}
	sock := l.Path("memif.sock")
	if err := os.WriteFile(sock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !polite.Exited() || !stubborn.Exited() {
		t.Fatal("processes still running after Close")
	}
	if stubborn.ExitErr() == nil || !strings.Contains(stubborn.ExitErr().Error(), "killed") {
		t.Fatalf("stubborn process should have been killed, exit %v", stubborn.ExitErr())
	}
	if _, err := os.Stat(l.Dir()); !os.IsNotExist(err) {
		t.Fatalf("lab directory %s still there: %v", l.Dir(), err)
	}
	if !ns.InHost() {
		out, err := exec.Command("ip", "netns", "list").Output()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), ns.Name) {
			t.Fatalf("namespace %s still listed: %s", ns.Name, out)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Start(context.Background(), ProcSpec{Name: "late", Path: "true"}); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}

func TestStdinSummaryAndLogs(t *testing.T) {
	l := newLab(t, Options{})
	p, err := l.Start(context.Background(), ProcSpec{Name: "tool", Path: "/bin/sh", Stdin: true,
		Args: []string{"-c", `echo progress >&2; read x; echo 'not json'; echo "{\"got\":\"$x\"}"; echo trailer`}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.WriteStdin("hello\n"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	var sum struct{ Got string }
	if err := p.LastJSON(&sum); err != nil {
		t.Fatal(err)
	}
	if sum.Got != "hello" {
		t.Fatalf("summary %+v", sum)
	}
	b, err := os.ReadFile(filepath.Join(l.Dir(), "logs", "tool.stderr"))
	if err != nil || string(b) != "progress\n" {
		t.Fatalf("stderr log %q, %v", b, err)
	}
	// A second process of the same name gets its own log files.
	q, err := l.Start(context.Background(), ProcSpec{Name: "tool", Path: "true"})
	if err != nil {
		t.Fatal(err)
	}
	if q.Name == p.Name {
		t.Fatalf("duplicate process name %q", q.Name)
	}
	var sb strings.Builder
	l.LogTails(&sb, 100)
	if !strings.Contains(sb.String(), "--- tool") || !strings.Contains(sb.String(), "progress") {
		t.Fatalf("log tails: %s", sb.String())
	}
}

func TestTopologyFromYAML(t *testing.T) {
	l := newLab(t, Options{})
	topo, err := ParseTopology([]byte(`
name: pair
nodes:
  - name: writer
    netns: true
    command: sh
    args: ["-c", "echo hi > {dir}/out; readlink /proc/self/ns/net"]
  - name: host
    command: sh
    args: ["-c", "readlink /proc/self/ns/net"]
`))
	if err != nil {
		t.Fatal(err)
	}
	procs, err := l.StartTopology(context.Background(), topo, func(c string) string { return "/bin/" + c })
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		if err := p.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if b, err := os.ReadFile(l.Path("out")); err != nil || string(b) != "hi\n" {
		t.Fatalf("{dir} not expanded: %q %v", b, err)
	}
	differ := procs["writer"].Stdout() != procs["host"].Stdout()
	if ok, _ := l.Netns(); ok != differ {
		t.Fatalf("netns %v but writer in %s, host in %s", ok, procs["writer"].Stdout(), procs["host"].Stdout())
	}
	for _, bad := range []string{
		"name: x\nnodes: [{name: a, command: sh}, {name: a, command: sh}]",
		"name: x\nnodes: [{name: a}]",
		"name: x\nnodes: [{name: a, command: sh, bogus: 1}]",
	} {
		if _, err := ParseTopology([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestNetnsOffRunsInHost(t *testing.T) {
	l := newLab(t, Options{Netns: NetnsOff})
	ns, err := l.AddNamespace(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Readlink("/proc/self/ns/net")
	if got := netnsOf(t, l, ns); got != host || !ns.InHost() {
		t.Fatalf("NetnsOff ran in %s, host is %s", got, host)
	}
}

func TestStaleNamespacesOfDeadLabsRemoved(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("needs root for network namespaces: nothing stale can exist without them")
		return
	}
	// A pid that cannot be alive (above pid_max's ceiling) stands for a killed test binary.
	stale := "vppmesh-killed-test-99999999-0"
	if out, err := exec.Command("ip", "netns", "add", stale).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", stale).Run() })
	l := newLab(t, Options{})
	if ok, _ := l.Netns(); !ok {
		t.Fatal("root but no namespaces")
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), stale) {
		t.Fatalf("stale namespace %s survived New", stale)
	}
}

func TestExampleTopologyFile(t *testing.T) {
	topo, err := LoadTopology(filepath.Join("testdata", "xconnect.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var inNetns []string
	for _, n := range topo.Nodes {
		if n.Netns {
			inNetns = append(inNetns, n.Name)
		}
	}
	if topo.Name != "xconnect" || len(topo.Nodes) != 4 || strings.Join(inNetns, ",") != "sink,gen" {
		t.Fatalf("topology %+v", topo)
	}
	if _, err := LoadTopology(filepath.Join("testdata", "missing.yaml")); err == nil {
		t.Fatal("missing file accepted")
	}
}
