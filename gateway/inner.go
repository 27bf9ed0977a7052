package gateway

import (
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/tun"
)

// Inner is a tunnel's inner device, where its inner packets are read and
// written, and how to undo what was configured for it.
type Inner struct {
	// Device is handed to the dataplane, which owns it from then on and
	// closes it when the tunnel stops.
	Device tun.Device
	// Undo, if not nil, removes what was configured besides the device
	// (addresses, routes). It is called once, after the dataplane has
	// closed Device, and should return once the interface is gone, so that
	// a tunnel of the same name can be started again at once.
	Undo func() error
	// SetCarrier, if not nil, turns the interface's carrier on or off
	// (tun.SetCarrier), for link-follows-ike.
	SetCarrier func(up bool) error
}

// InnerFunc creates and configures the inner device of tunnel t, whose
// inner MTU is mtu. The gateway calls it once per tunnel start, in
// configuration order. A userspace network stack (gVisor netstack) plugs
// in here instead of a kernel TUN device.
type InnerFunc func(t *config.Tunnel, mtu int) (Inner, error)

// TUNInner is the default InnerFunc: a kernel TUN device named after the
// tunnel's interface (tun.Create), given its MTU, addresses and routes
// (tun.Configure). It needs CAP_NET_ADMIN and /dev/net/tun.
func TUNInner(t *config.Tunnel, mtu int) (Inner, error) {
	name := t.Dataplane.Interface
	dev, err := tun.Create(name, mtu)
	if err != nil {
		return Inner{}, fmt.Errorf("create TUN device %s: %w", name, err)
	}
	link := t.Link
	link.MTU = mtu
	undo, err := tun.Configure(name, link)
	if err != nil {
		dev.Close()
		waitInterfaceGone(name)
		return Inner{}, fmt.Errorf("configure TUN device %s: %w", name, err)
	}
	// Nobody else reads the device's link events; unread, they would
	// block wireguard-go's netlink listener after a few carrier changes.
	go func() {
		for range dev.Events() {
		}
	}()
	in := Inner{Device: dev, Undo: func() error {
		err := undo()
		waitInterfaceGone(name)
		return err
	}}
	if runtime.GOOS == "linux" { // TUNSETCARRIER
		in.SetCarrier = func(up bool) error { return tun.SetCarrier(dev, up) }
	}
	return in, nil
}

// interfaceGoneTimeout bounds how long waitInterfaceGone waits: the kernel
// unregisters a closed TUN device asynchronously.
const interfaceGoneTimeout = 3 * time.Second

// waitInterfaceGone waits until no interface called name exists, or
// interfaceGoneTimeout has passed.
func waitInterfaceGone(name string) {
	deadline := time.Now().Add(interfaceGoneTimeout)
	for time.Now().Before(deadline) {
		if _, err := net.InterfaceByName(name); err != nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
