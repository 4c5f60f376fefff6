package agent

import (
	"context"
	"io"
	"log/slog"

	"github.com/sirupsen/logrus"
	"go.fd.io/govpp/adapter/socketclient"
	"go.fd.io/govpp/core"
)

// slogHook forwards govpp's logrus entries to slog, so the agent writes one
// structured log stream instead of two formats on stderr.
type slogHook struct{ log *slog.Logger }

func (h slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h slogHook) Fire(e *logrus.Entry) error {
	lvl := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		lvl = slog.LevelError
	case e.Level == logrus.WarnLevel:
		lvl = slog.LevelWarn
	case e.Level == logrus.InfoLevel:
		lvl = slog.LevelInfo
	}
	if !h.log.Enabled(context.Background(), lvl) {
		return nil
	}
	args := make([]any, 0, 2*len(e.Data)+2)
	args = append(args, "component", "govpp")
	for k, v := range e.Data {
		args = append(args, k, v)
	}
	h.log.Log(context.Background(), lvl, e.Message, args...)
	return nil
}

// RouteGovppLogs points govpp's package-level loggers at log. govpp keeps
// them as globals; the agent is the one place that sets them.
func RouteGovppLogs(log *slog.Logger, level slog.Level) {
	l := logrus.New()
	l.SetOutput(io.Discard)
	l.AddHook(slogHook{log: log})
	// govpp is chatty at info about reconnect internals; keep it at warn
	// unless the agent itself runs at debug.
	l.SetLevel(logrus.WarnLevel)
	if level <= slog.LevelDebug {
		l.SetLevel(logrus.DebugLevel)
	}
	core.SetLogger(l)
	socketclient.SetLogger(l)
	govppLogger.Store(l)
}
