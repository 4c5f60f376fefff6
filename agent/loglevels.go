package agent

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/vppmesh/vppmesh/plugins/restapi"
)

// govppLogger is the logrus logger RouteGovppLogs gave govpp, so that its
// level can be changed at run time.
var govppLogger atomic.Pointer[logrus.Logger]

// Logger names, as Ligato's /log/list shows them.
const (
	loggerAgent = "vppmesh-agent"
	loggerGovpp = "govpp"
)

func slogLevelName(l slog.Level) string {
	switch {
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	}
	return "error"
}

// logLevels lists the loggers whose level can be changed.
func (a *Agent) logLevels() map[string]string {
	out := map[string]string{}
	if a.opts.LogLevelVar != nil {
		out[loggerAgent] = slogLevelName(a.opts.LogLevelVar.Level())
	}
	if l := govppLogger.Load(); l != nil {
		lvl := l.GetLevel().String()
		if lvl == "warning" {
			lvl = "warn"
		}
		out[loggerGovpp] = lvl
	}
	return out
}

// setLogLevel changes one logger's level (Ligato's level names accepted).
func (a *Agent) setLogLevel(logger, level string) error {
	var sl slog.Level
	if err := sl.UnmarshalText([]byte(ligatoLevel(level))); err != nil {
		return fmt.Errorf("level %q: want debug, info, warn (warning) or error", level)
	}
	switch logger {
	case loggerAgent:
		if a.opts.LogLevelVar == nil {
			return fmt.Errorf("%w %q: this agent's log level is fixed", restapi.ErrUnknownLogger, logger)
		}
		a.opts.LogLevelVar.Set(sl)
	case loggerGovpp:
		l := govppLogger.Load()
		if l == nil {
			return fmt.Errorf("%w %q: govpp logs are not routed", restapi.ErrUnknownLogger, logger)
		}
		lr, err := logrus.ParseLevel(strings.ToLower(ligatoLevel(level)))
		if err != nil {
			return fmt.Errorf("level %q: %w", level, err)
		}
		l.SetLevel(lr)
	default:
		return fmt.Errorf("%w %q (loggers: %s, %s)", restapi.ErrUnknownLogger, logger, loggerAgent, loggerGovpp)
	}
	return nil
}

// recentLogs serves /log/recent from the log ring, when there is one.
func (a *Agent) recentLogs() func(n int) [][]byte {
	if a.opts.LogRing == nil {
		return nil
	}
	return a.opts.LogRing.Last
}
