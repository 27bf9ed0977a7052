//go:build !linux

package gateway

// hostRoutes is not implemented outside Linux: CheckHost finds nothing.
func hostRoutes() ([]hostRoute, error) { return nil, nil }
