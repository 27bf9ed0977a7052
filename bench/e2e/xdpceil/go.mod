// The receiving half of the AF_XDP experiment of issue 10 (see main.go):
// its own module, so that greipsec does not depend on cilium/ebpf.
module github.com/greipsec/greipsec/bench/e2e/xdpceil

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	golang.org/x/sys v0.49.0
)
