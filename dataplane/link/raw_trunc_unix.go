//go:build unix && !linux

package link

import "syscall"

// msgTrunc is the recvmsg flag for a datagram cut short by a small buffer.
const msgTrunc = syscall.MSG_TRUNC
