//go:build !linux

package main

import "errors"

var errNotLinux = errors.New("rawceil: needs Linux (sendmmsg, recvmmsg)")

func send(config) (result, error)         { return result{}, errNotLinux }
func recv(config, func()) (result, error) { return result{}, errNotLinux }
func sendPacket(config) (result, error)   { return result{}, errNotLinux }
