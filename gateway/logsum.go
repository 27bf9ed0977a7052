package gateway

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"
)

// Logging is an attack surface: whatever an unauthenticated sender can
// repeat at packet rate (IKE from unknown peers, datagrams that cannot be
// sent) is counted, and logged at most once per summaryInterval as one line
// with the count, at every log level. Per-message debug traces are rate
// limited too (traceLimit).

// summaryInterval is how often a summary is logged, at most.
const summaryInterval = 10 * time.Second

// A summary counts one kind of event that may repeat at packet rate and
// logs it as one line per interval: "dropped IKE messages from addresses
// that are no tunnel's peer" count=3 interval=10s last_from=198.51.100.7:500.
// It is safe for concurrent use; add allocates nothing.
type summary struct {
	msg string

	mu   sync.Mutex
	n    uint64
	from netip.AddrPort // the last event's address
	err  error          // the last event's error, if any
}

// add counts one event.
func (s *summary) add(from netip.AddrPort, err error) {
	s.mu.Lock()
	s.n++
	s.from, s.err = from, err
	s.mu.Unlock()
}

// flush logs the events counted since the last flush, if any, as one line.
func (s *summary) flush(log *slog.Logger, level slog.Level) {
	s.mu.Lock()
	n, from, err := s.n, s.from, s.err
	s.n, s.err = 0, nil
	s.mu.Unlock()
	if n == 0 {
		return
	}
	args := []any{"count", n, "interval", summaryInterval.String(), "last_from", from.String()}
	if err != nil {
		args = append(args, "last_err", err.Error())
	}
	log.Log(context.Background(), level, s.msg, args...)
}

// traceLimit is a token bucket for per-message debug lines: traceRate lines
// a second on average, traceBurst at once; what it refuses is counted and
// reported with the next line it allows. Not safe for concurrent use (one
// per session goroutine).
type traceLimit struct {
	tokens     float64
	last       time.Time
	suppressed uint64
}

const (
	traceRate  = 20
	traceBurst = 50
)

// allow reports whether a line may be logged at now, and how many were
// suppressed before it.
func (l *traceLimit) allow(now time.Time) (ok bool, suppressed uint64) {
	if l.last.IsZero() {
		l.tokens = traceBurst
	} else {
		l.tokens = min(traceBurst, l.tokens+now.Sub(l.last).Seconds()*traceRate)
	}
	l.last = now
	if l.tokens < 1 {
		l.suppressed++
		return false, 0
	}
	l.tokens--
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}
