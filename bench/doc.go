// Package bench holds greipsec's benchmarks.
//
// pipeline_test.go measures the in-process dataplane: two gateways in one
// process joined by an in-memory link, each with an in-memory TUN device,
// per algorithm and packet size:
//
//	go test -run '^$' -bench Pipeline -benchtime 200000x ./bench/
//
// e2e/run.sh measures, between two network namespaces, iperf3 TCP
// throughput (1 and 4 streams, IPv4 and IPv6 outer), UDP packets per second
// and ping latency (idle and under load) through greipsec, through
// wireguard-go and over the bare link, the host's raw IP ceiling
// (e2e/rawceil), and prints the ratios. TestE2EScriptQuick runs it with
// QUICK=1 as root and checks that every cell of its output is a number.
//
// For users, `greipsec bench` (package internal/benchrun) runs the same
// kind of in-process pair, or two greipsec processes in network namespaces
// as root, over a sweep of algorithms, sizes and transports, and prints
// each against this CPU's single-core seal rate.
package bench
