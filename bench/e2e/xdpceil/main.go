// Command xdpceil is the receiving half of an experiment for issue 10:
// does skipping the kernel's IP input speed up raw ESP on this host? It
// attaches an XDP program to -dev that hands every IPv4 protocol-50 packet
// to an AF_XDP socket (copy mode, queue 0) instead of the IP stack, counts
// what arrives, and prints one JSON line like bench/e2e/rawceil's receiver:
//
//	xdpceil -dev VETH_B -t 4s                                  # in B
//	rawceil -mode send -dst 192.0.2.2 -t 4s [-tx packet ...]   # in A
//
// It is its own module, as bench/e2e/wgnetstack is, so that greipsec does
// not depend on github.com/cilium/ebpf for an experiment. Linux only, root.
//
// Result on the project's 2-core host (README.md, Benchmarks): the rate is
// the same as with a raw socket receiving through the IP stack, because on
// a veth pair the sender's CPU is the bottleneck.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

const (
	frameSize = 2048 // bytes per UMEM frame
	nFrames   = 4096
	ringSize  = 2048 // entries of the fill and RX rings
	descSize  = 16   // struct xdp_desc
)

// ring is one mmap'ed AF_XDP ring (fill: uint64 addresses; RX: xdp_desc).
type ring struct {
	producer, consumer *uint32
	desc               unsafe.Pointer
	mask               uint32
}

func mapRing(fd int, pgoff int64, off unix.XDPRingOffset, entrySize uintptr) (ring, error) {
	b, err := unix.Mmap(fd, pgoff, int(off.Desc)+ringSize*int(entrySize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return ring{}, fmt.Errorf("xdpceil: mmap ring: %w", err)
	}
	base := unsafe.Pointer(&b[0])
	return ring{
		producer: (*uint32)(unsafe.Add(base, off.Producer)),
		consumer: (*uint32)(unsafe.Add(base, off.Consumer)),
		desc:     unsafe.Add(base, off.Desc),
		mask:     ringSize - 1,
	}, nil
}

// program returns the XDP program: IPv4 (Ethernet type 0x0800) with
// protocol 50 goes to the socket in xsks at the packet's RX queue, all
// else to the stack.
func program(xsks *ebpf.Map) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),               // ctx
		asm.LoadMem(asm.R2, asm.R6, 0, asm.Word),  // data
		asm.LoadMem(asm.R3, asm.R6, 4, asm.Word),  // data_end
		asm.Mov.Reg(asm.R4, asm.R2),               //
		asm.Add.Imm(asm.R4, 14+20),                // Ethernet + IPv4 header
		asm.JGT.Reg(asm.R4, asm.R3, "pass"),       //
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half), // Ethernet type, as stored
		asm.JNE.Imm(asm.R5, 0x0008, "pass"),       // 0x0800 in network order, read little-endian
		asm.LoadMem(asm.R5, asm.R2, 14+9, asm.Byte),
		asm.JNE.Imm(asm.R5, 50, "pass"),
		asm.LoadMapPtr(asm.R1, xsks.FD()),
		asm.LoadMem(asm.R2, asm.R6, 16, asm.Word), // rx_queue_index
		asm.Mov.Imm(asm.R3, 2),                    // XDP_PASS if no socket
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 2).WithSymbol("pass"), // XDP_PASS
		asm.Return(),
	}
}

type result struct {
	Mode    string  `json:"mode"`
	Proto   string  `json:"proto"`
	Packets uint64  `json:"packets"`
	Bytes   uint64  `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

func run(dev string, dur time.Duration) (result, error) {
	ifi, err := net.InterfaceByName(dev)
	if err != nil {
		return result{}, fmt.Errorf("xdpceil: -dev: %w", err)
	}
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 8})
	if err != nil {
		return result{}, fmt.Errorf("xdpceil: XSKMAP: %w", err)
	}
	defer xsks.Close()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Type: ebpf.XDP, Instructions: program(xsks), License: "GPL"})
	if err != nil {
		return result{}, fmt.Errorf("xdpceil: XDP program: %w", err)
	}
	defer prog.Close()
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index})
	if err != nil {
		return result{}, fmt.Errorf("xdpceil: attach to %s: %w", dev, err)
	}
	defer l.Close()

	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return result{}, os.NewSyscallError("xdpceil: socket AF_XDP", err)
	}
	defer unix.Close(fd)
	umem, err := unix.Mmap(-1, 0, frameSize*nFrames, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return result{}, fmt.Errorf("xdpceil: UMEM: %w", err)
	}
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&umem[0]))), Len: uint64(len(umem)), Size: frameSize}
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_UMEM_REG, uintptr(unsafe.Pointer(&reg)), unsafe.Sizeof(reg), 0); e != 0 {
		return result{}, os.NewSyscallError("xdpceil: XDP_UMEM_REG", e)
	}
	for _, o := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, o, ringSize); err != nil {
			return result{}, os.NewSyscallError("xdpceil: ring size", err)
		}
	}
	var off unix.XDPMmapOffsets
	offLen := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS, uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&offLen)), 0); e != 0 {
		return result{}, os.NewSyscallError("xdpceil: XDP_MMAP_OFFSETS", e)
	}
	rx, err := mapRing(fd, unix.XDP_PGOFF_RX_RING, off.Rx, descSize)
	if err != nil {
		return result{}, err
	}
	fill, err := mapRing(fd, unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, 8)
	if err != nil {
		return result{}, err
	}
	for i := range uint32(ringSize) {
		*(*uint64)(unsafe.Add(fill.desc, uintptr(i)*8)) = uint64(i) * frameSize
	}
	atomic.StoreUint32(fill.producer, ringSize)
	if err := unix.Bind(fd, &unix.SockaddrXDP{Flags: unix.XDP_COPY, Ifindex: uint32(ifi.Index), QueueID: 0}); err != nil {
		return result{}, os.NewSyscallError("xdpceil: bind", err)
	}
	if err := xsks.Put(uint32(0), uint32(fd)); err != nil {
		return result{}, fmt.Errorf("xdpceil: XSKMAP: %w", err)
	}
	fmt.Fprintln(os.Stderr, "xdpceil: ready")

	// Count until dur after the first packet, or 500 ms without one.
	var r result
	var first, last time.Time
	fprod := uint32(ringSize)
	wait := time.Now().Add(30 * time.Second)
	for {
		now := time.Now()
		if first.IsZero() && now.After(wait) {
			return result{}, errors.New("xdpceil: no packet in 30 s")
		}
		if !first.IsZero() && (now.Sub(last) > 500*time.Millisecond || now.Sub(first) > dur) {
			break
		}
		prod, cons := atomic.LoadUint32(rx.producer), *rx.consumer
		if prod == cons {
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
			continue
		}
		if first.IsZero() {
			first = now
		}
		last = now
		for ; cons != prod; cons++ {
			d := unsafe.Add(rx.desc, uintptr(cons&rx.mask)*descSize)
			r.Packets++
			r.Bytes += uint64(*(*uint32)(unsafe.Add(d, 8))) - 14 - 20 // payload, as rawceil counts
			*(*uint64)(unsafe.Add(fill.desc, uintptr(fprod&fill.mask)*8)) = *(*uint64)(d) &^ (frameSize - 1)
			fprod++
		}
		atomic.StoreUint32(rx.consumer, cons)
		atomic.StoreUint32(fill.producer, fprod)
	}
	r.Mode, r.Proto, r.Seconds = "xdp-recv", "esp", last.Sub(first).Seconds()
	return r, nil
}

func main() {
	dev := flag.String("dev", "", "the interface to receive on")
	dur := flag.Duration("t", 10*time.Second, "count at most this long after the first packet")
	flag.Parse()
	if *dev == "" || *dur <= 0 || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: xdpceil -dev IFNAME [-t DURATION]")
		os.Exit(2)
	}
	r, err := run(*dev, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	line, _ := json.Marshal(r)
	fmt.Println(string(line))
}
