//go:build !unix && !linux

package link

// msgTrunc is 0 where recvmsg has no truncation flag: Windows fails the
// read with WSAEMSGSIZE instead.
const msgTrunc = 0
