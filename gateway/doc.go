// Package gateway runs a greipsec gateway as a library: from a
// configuration (package gateway/config) it builds the dataplane Device,
// one tunnel with its inner device per [[tunnel]], and the IKE runner that
// negotiates the Child SAs of the tunnels keyed by IKE and installs them
// into the dataplane. A Go program runs a gateway with New and Close, asks
// it for a Status, changes it with Reload and commands it with Initiate,
// Terminate and Rekey; cmd/greipsec adds only flags, signals and printing.
//
// A tunnel with inner = "netstack" ends in a user-space TCP/IP stack
// instead of a TUN device, and needs no privilege (with transport = "udp"
// and [tunnel.ike] port-500 = false, none at all: no capability, no port
// below 1024). The gateway runs the tunnel's SOCKS5 and HTTP proxies and
// port forwards for local programs, and a Go program reaches the far site
// itself through Net, which returns the tunnel's *netstack.Stack:
//
//	cfg, err := config.Load("netstack-a.toml")
//	...
//	gw, err := gateway.New(cfg, gateway.Options{})
//	...
//	st, err := gw.Net("ns0")
//	...
//	client := &http.Client{Transport: &http.Transport{DialContext: st.DialContext}}
//	resp, err := client.Get("http://10.2.0.1/") // on the far site's LAN
//
// examples/embed is a whole program that does this. MissingPrivileges says,
// without touching anything, what a configuration needs of the system that
// this process lacks.
//
//	gateway.go   Gateway, Options, New, Close: start-up step by step, undone on error
//	inner.go     the inner device of a tunnel (InnerFunc; TUNInner, the kernel TUN device)
//	netstack.go  the netstack inner side (NetstackInner), its proxies and forwards, Net
//	privileges.go what a configuration needs of the system (MissingPrivileges)
//	ike.go       the IKE runner: port 500 sockets (none with port-500 = false), dispatch by peer through the ikev2.Gate
//	             (priority and init queues, stateless cookies), sending from the right socket, unknown-SPI hints
//	session.go   one tunnel's IKE session and its goroutine: events, Child SA install (failures fail the exchange), traces
//	hostcheck.go what the host's routes say about a configuration (CheckHost: existing routes, routes that loop)
//	commands.go  Initiate, Terminate, Rekey (swanctl --initiate, --terminate, --rekey)
//	status.go    Status: the snapshot that `greipsec show` prints and the control API returns
//	reload.go    Reload and PlanReload: unchanged, added, removed and changed tunnels
//	metrics.go   the Prometheus collector, /metrics, /healthz and /readyz
//	logsum.go    summaries of what may repeat at packet rate, and the trace rate limit
//	hints.go     what to do about a start-up failure
//
// The control socket, JSON over HTTP on a Unix socket, is package
// gateway/control.
package gateway
