// Package crossbuild holds the test that cross-compiles and vets the whole
// module for every platform greipsec supports, so that the ordinary
// `go test ./...` on Linux catches code that only breaks elsewhere. It has
// no code of its own.
package crossbuild
