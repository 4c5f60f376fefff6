package govppmux

import (
	"io"
	"log/slog"
	"time"

	"go.fd.io/govpp/api"
)

// DefaultSocket is where VPP listens for binary API clients by default.
const DefaultSocket = "/run/vpp/api.sock"

// Options configure a Mux. Zero values take the documented defaults.
type Options struct {
	// Socket is VPP's binary API socket (default /run/vpp/api.sock).
	Socket string
	// HealthInterval is the period of the control_ping health check
	// (default 1s); HealthTimeout bounds one probe (default 1s) and
	// HealthThreshold consecutive failures declare VPP gone (default 3).
	HealthInterval  time.Duration
	HealthTimeout   time.Duration
	HealthThreshold int
	// HealthTimeoutMax caps the probe timeout, which doubles after each
	// probe that times out and resets after one that succeeds (default
	// 4×HealthTimeout).
	HealthTimeoutMax time.Duration
	// EventBuffer sizes govpp's buffers for each event subscription
	// (default 16384); a full buffer drops VPP notifications.
	EventBuffer int
	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts (defaults 100ms and 5s). Attempts never stop.
	ReconnectMin, ReconnectMax time.Duration
	// CallTimeout bounds a VPP call whose context has no deadline
	// (default 10s), so that a hung VPP never blocks a caller forever.
	CallTimeout time.Duration
	// Messages are checked for compatibility at every connect; descriptors'
	// Messages() lists go here (AddMessages adds more later).
	Messages []api.Message
	// Logger receives one structured line per event; nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = time.Second
	}
	if o.HealthTimeout <= 0 {
		o.HealthTimeout = time.Second
	}
	if o.HealthThreshold <= 0 {
		o.HealthThreshold = 3
	}
	if o.HealthTimeoutMax < o.HealthTimeout {
		o.HealthTimeoutMax = 4 * o.HealthTimeout
	}
	if o.EventBuffer <= 0 {
		o.EventBuffer = 16384
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = 100 * time.Millisecond
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = 5 * time.Second
		if o.ReconnectMax < o.ReconnectMin {
			o.ReconnectMax = o.ReconnectMin
		}
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}
