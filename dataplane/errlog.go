package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// errorLogInterval is how often an errorLog logs a summary of the failures
// it counted.
const errorLogInterval = 10 * time.Second

// An errorLog summarises a failure of the data path that may repeat once
// per batch (a socket send, a TUN write, a receive): the first failure
// after a quiet interval is logged at once, those that follow are counted
// and logged as one line at the end of each interval in which there were
// any ("12 send errors in the last 10s", with the last error). The data path never
// logs per packet; what it drops is counted (TunnelStats, DeviceStats,
// esp.Stats). Safe for concurrent use; it allocates only when it logs.
type errorLog struct {
	log      *slog.Logger
	level    slog.Level
	msg      string // what failed, as a singular noun phrase: "send error"
	attrs    []any  // attributes of every line, e.g. the tunnel
	interval time.Duration

	mu      sync.Mutex
	count   int   // failures since the last line
	last    error // the last of them
	timer   *time.Timer
	stopped bool
}

func newErrorLog(log *slog.Logger, level slog.Level, msg string, attrs ...any) *errorLog {
	return &errorLog{log: log, level: level, msg: msg, attrs: attrs, interval: errorLogInterval}
}

// add records one failure.
func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return
	}
	if l.timer != nil { // an interval is open: count
		l.count++
		l.last = err
		return
	}
	l.emit(1, err, "")
	l.timer = time.AfterFunc(l.interval, l.flush)
}

// flush ends an interval: it logs what was counted in it and opens the
// next one, or, if there was nothing, goes quiet.
func (l *errorLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || l.count == 0 {
		l.timer = nil
		return
	}
	l.emit(l.count, l.last, fmt.Sprintf(" in the last %v", l.interval))
	l.count, l.last = 0, nil
	l.timer.Reset(l.interval)
}

func (l *errorLog) emit(n int, err error, period string) {
	msg := fmt.Sprintf("%d %ss%s", n, l.msg, period)
	if period == "" {
		msg = fmt.Sprintf("%s (further ones are summarised every %v)", l.msg, l.interval)
	}
	l.log.Log(context.Background(), l.level, msg, append(append([]any(nil), l.attrs...), "last", err)...)
}

// stop ends logging: nothing more is logged, and the pending summary is
// dropped.
func (l *errorLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
	if l.timer != nil {
		l.timer.Stop()
	}
}
