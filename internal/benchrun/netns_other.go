//go:build !linux

package benchrun

import (
	"context"
	"errors"
	"time"

	"github.com/greipsec/greipsec/esp"
)

var errNoNetns = errors.New("benchrun: netns mode needs Linux network namespaces: use --mode memory")

func netnsAvailable() error { return errNoNetns }

// netnsRunner is never made on this system.
type netnsRunner struct{}

func newNetnsRunner(string) (*netnsRunner, error) { return nil, errNoNetns }

func (*netnsRunner) setup(context.Context, string, esp.Transform) error { return errNoNetns }
func (*netnsRunner) measure(context.Context, int, bool, time.Duration, time.Duration, *Row) error {
	return errNoNetns
}
func (*netnsRunner) measureTCP(context.Context, bool, time.Duration, *Row) error { return errNoNetns }
func (*netnsRunner) teardown()                                                   {}
func (*netnsRunner) close() error                                                { return nil }
