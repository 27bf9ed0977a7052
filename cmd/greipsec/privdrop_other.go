//go:build !linux

package main

import "errors"

func dropPrivileges(uid, gid int) error {
	return errors.New("--user: dropping privileges is implemented on Linux only")
}

func keptCapNames() string { return "" }

func userAccess(uid, gid int, path, stateFile string, manual bool) ([]error, []string) {
	return nil, nil
}
