package crossbuild

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Platforms are the GOOS/GOARCH pairs greipsec supports; the README's
// platform table lists what is run on each and what is only built.
var Platforms = []struct{ GOOS, GOARCH string }{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"darwin", "amd64"},
	{"darwin", "arm64"},
	{"windows", "amd64"},
	{"freebsd", "amd64"},
	{"openbsd", "amd64"},
}

// TestCrossBuild runs `go vet ./...` and `go build ./...` on the whole
// module for each platform, without cgo, as a release would build it. The
// platforms build two at a time (each go command already uses every core);
// the build cache makes later runs quick.
func TestCrossBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: cross-compiling the module for every platform takes a minute or two")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command in PATH: %v", err)
	}
	out, err := exec.Command(gobin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))

	sem := make(chan struct{}, 2)
	for _, p := range Platforms {
		t.Run(p.GOOS+"/"+p.GOARCH, func(t *testing.T) {
			t.Parallel()
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, args := range [][]string{{"vet", "./..."}, {"build", "./..."}} {
				cmd := exec.Command(gobin, args...)
				cmd.Dir = root
				cmd.Env = append(os.Environ(), "GOOS="+p.GOOS, "GOARCH="+p.GOARCH, "CGO_ENABLED=0")
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("GOOS=%s GOARCH=%s go %s: %v\n%s", p.GOOS, p.GOARCH, strings.Join(args, " "), err, out)
				}
			}
		})
	}
}
