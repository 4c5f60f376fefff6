package cnf

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/bits"
	"net"
	"os"
	"strings"
	"time"

	"github.com/vppmesh/vppmesh/test/vppsim/memif"
)

// Config is a whole CNF process: the memif side, the traffic and the reporting.
type Config struct {
	Options
	// Socket is the memif control socket (a path, or "@name" for an abstract socket).
	Socket string
	Role   memif.Role
	Memif  memif.Config
	// Progress writes a live one-line status to stderr every ProgressInterval.
	Progress         bool
	ProgressInterval time.Duration
	// StatsFile, when set, is rewritten with the current Summary every StatsInterval, on
	// SIGUSR1 and at the end.
	StatsFile     string
	StatsInterval time.Duration
	LogLevel      slog.Level
}

// ParseArgs parses the command line of vppmesh-cnf: a mode (gen, sink or reflect)
// followed by flags. Usage and errors go to out.
func ParseArgs(args []string, out io.Writer) (Config, error) {
	var cfg Config
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(out, "usage: vppmesh-cnf gen|sink|reflect [flags]  (vppmesh-cnf gen -h lists the flags)")
		return cfg, errors.New("missing mode: gen, sink or reflect")
	}
	cfg.Mode = Mode(args[0])
	if cfg.Mode != ModeGen && cfg.Mode != ModeSink && cfg.Mode != ModeReflect {
		return cfg, fmt.Errorf("unknown mode %q: want gen, sink or reflect", args[0])
	}
	fs := flag.NewFlagSet("vppmesh-cnf "+args[0], flag.ContinueOnError)
	fs.SetOutput(out)
	socket := fs.String("socket", "/run/vpp/memif.sock", `memif control socket ("@name" for an abstract socket)`)
	id := fs.Uint("id", 0, "memif interface id on the socket")
	role := fs.String("role", "slave", "memif role: slave (connects to VPP's master) or master (listens)")
	secret := fs.String("secret", "", "memif secret, up to 24 bytes (never logged; visible to local users in /proc/*/cmdline, prefer --secret-file)")
	secretFile := fs.String("secret-file", "", "file holding the memif secret (mode 0600; surrounding whitespace trimmed)")
	mode := fs.String("mode", "ethernet", "memif mode: ethernet or ip")
	name := fs.String("name", "", "memif interface name announced to the peer (default memif<id>)")
	ringSize := fs.Uint("ring-size", 1024, "descriptors per ring, a power of two (2..16384)")
	bufSize := fs.Uint("buffer-size", 2048, "memif buffer size in bytes, a multiple of 8 (longer frames chain)")
	queues := fs.Int("queues", 1, "queues each way (the slave asks, the master takes what its slave asks)")
	retry := fs.Duration("retry", 250*time.Millisecond, "slave: pause between connection attempts")

	rate := fs.Float64("rate", 0, "gen: frames per second, 0 = as fast as the ring takes")
	size := fs.Int("size", 64, "gen: frame size in bytes (64..9000)")
	count := fs.Uint64("count", 0, "gen: frames to send; sink/reflect: stop after receiving this many (0 = no limit)")
	duration := fs.Duration("duration", 0, "gen: send for this long after link up; sink/reflect: run this long (0 = no limit)")
	stream := fs.Uint("stream", 1, "gen: stream id of queue 0 (queue i uses stream+i)")
	srcMAC := fs.String("src-mac", "02:fe:00:00:00:01", "gen: source MAC")
	dstMAC := fs.String("dst-mac", "02:fe:00:00:00:02", "gen: destination MAC")
	batch := fs.Int("batch", 64, "frames per burst")
	linger := fs.Duration("linger", 500*time.Millisecond, "gen: keep the link up this long after the last frame so the peer drains the ring")
	idle := fs.Duration("idle", 0, "sink/reflect: stop after this long without frames once traffic started (0 = never)")
	swap := fs.Bool("swap-macs", false, "reflect: swap source and destination MAC")
	maxFrame := fs.Int("max-frame", 9216, "sink/reflect: receive buffer per frame")
	spins := fs.Int("spins", 64, "idle receive queue: re-checks before sleeping on the interrupt (-1 = sleep at once)")

	fs.BoolVar(&cfg.Progress, "progress", false, "live one-line progress on stderr")
	fs.DurationVar(&cfg.ProgressInterval, "progress-interval", time.Second, "progress line period")
	fs.StringVar(&cfg.StatsFile, "stats-file", "", "rewrite this file with the current JSON counters periodically, on SIGUSR1 and at exit")
	fs.DurationVar(&cfg.StatsInterval, "stats-interval", time.Second, "stats file period")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args[1:]); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	cfg.Socket = *socket
	switch *role {
	case "slave", "client":
		cfg.Role = memif.RoleSlave
	case "master", "server":
		cfg.Role = memif.RoleMaster
	default:
		return cfg, fmt.Errorf("--role %q: want slave or master", *role)
	}
	switch *mode {
	case "ethernet", "eth":
		cfg.Memif.Mode = memif.ModeEthernet
	case "ip":
		cfg.Memif.Mode = memif.ModeIP
		cfg.IPMode = true
	default:
		return cfg, fmt.Errorf("--mode %q: want ethernet or ip", *mode)
	}
	if *id > 1<<32-1 {
		return cfg, fmt.Errorf("--id %d does not fit 32 bits", *id)
	}
	if *ringSize < 2 || *ringSize > 1<<14 || bits.OnesCount(*ringSize) != 1 {
		return cfg, fmt.Errorf("--ring-size %d: want a power of two in 2..16384", *ringSize)
	}
	if *bufSize == 0 || *bufSize%8 != 0 || *bufSize > 1<<20 {
		return cfg, fmt.Errorf("--buffer-size %d: want a multiple of 8 up to 1 MiB", *bufSize)
	}
	if *queues < 1 || *queues > 255 {
		return cfg, fmt.Errorf("--queues %d: want 1..255", *queues)
	}
	if *secretFile != "" {
		if *secret != "" {
			return cfg, errors.New("--secret and --secret-file are exclusive")
		}
		v, err := readSecretFile(*secretFile)
		if err != nil {
			return cfg, fmt.Errorf("--secret-file: %w", err)
		}
		*secret = v
	}
	if len(*secret) > 24 {
		return cfg, errors.New("memif secret longer than 24 bytes")
	}
	if *stream > 1<<32-1 {
		return cfg, fmt.Errorf("--stream %d does not fit 32 bits", *stream)
	}
	cfg.Memif.ID = uint32(*id)
	cfg.Memif.Name = *name
	cfg.Memif.AppName = "vppmesh-cnf"
	cfg.Memif.Secret = *secret
	cfg.Memif.Log2RingSize = uint8(bits.TrailingZeros(*ringSize))
	cfg.Memif.BufferSize = uint32(*bufSize)
	cfg.Memif.NumS2M, cfg.Memif.NumM2S = *queues, *queues
	cfg.Memif.RetryInterval = *retry

	var err error
	if cfg.SrcMAC, err = parseMAC("--src-mac", *srcMAC); err != nil {
		return cfg, err
	}
	if cfg.DstMAC, err = parseMAC("--dst-mac", *dstMAC); err != nil {
		return cfg, err
	}
	cfg.Rate, cfg.Size, cfg.Count, cfg.Duration = *rate, *size, *count, *duration
	cfg.Stream, cfg.Batch, cfg.Linger, cfg.Idle = uint32(*stream), *batch, *linger, *idle
	cfg.SwapMACs, cfg.MaxFrame, cfg.Spins = *swap, *maxFrame, *spins
	if cfg.Spins == 0 {
		cfg.Spins = -1 // Options treats 0 as "default"; the flag's 0 means no re-checks
	}
	if cfg.ProgressInterval <= 0 || cfg.StatsInterval <= 0 {
		return cfg, errors.New("--progress-interval and --stats-interval must be positive")
	}
	// Validate the traffic options now, so a bad flag fails before any socket is touched.
	o := cfg.Options
	if err := o.setDefaults(); err != nil {
		return cfg, err
	}
	return cfg, nil
}

func parseMAC(flagName, s string) ([6]byte, error) {
	var m [6]byte
	hw, err := net.ParseMAC(s)
	if err != nil {
		return m, fmt.Errorf("%s %q: %w", flagName, s, err)
	}
	if len(hw) != 6 {
		return m, fmt.Errorf("%s %q: want a 48-bit MAC", flagName, s)
	}
	copy(m[:], hw)
	return m, nil
}

// readSecretFile reads a secret that other users must not be able to read.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s: mode %v lets other users read the secret; chmod 600 it", path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 1024))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
