// Package bench holds greipsec's benchmarks.
//
// pipeline_test.go measures the in-process dataplane: two gateways in one
// process joined by an in-memory link, each with an in-memory TUN device,
// per algorithm and packet size:
//
//	go test -run '^$' -bench Pipeline -benchtime 200000x ./bench/
//
// e2e/run.sh measures iperf3 TCP throughput between two network namespaces
// through greipsec, through wireguard-go, and over the bare link, and prints
// the ratios.
//
// For users, `greipsec bench` (package internal/benchrun) runs the same
// kind of in-process pair, or two greipsec processes in network namespaces
// as root, over a sweep of algorithms, sizes and transports, and prints
// each against this CPU's single-core seal rate.
package bench
