package config

import (
	"errors"
	"strings"
	"testing"
)

// TestRuntimeFailuresCaught: what used to pass check and fail at run time
// (issue 6): lifetime-bytes too small for the rekey at 80% of it (with
// lifetime-bytes = 1 the soft limit was not below the hard one and every
// Child SA failed to install, IKE SA up, 100% loss) is an error; a manual
// SA left with new = true and routes of two tunnels that overlap are
// warnings with their lines.
func TestRuntimeFailuresCaught(t *testing.T) {
	for _, n := range []string{"1", "4", "1000", `"1023K"`} {
		_, err := Parse("x.toml", []byte(withIKE("lifetime-bytes = "+n)))
		var e *Error
		if !errors.As(err, &e) || e.Line != 12 || !strings.Contains(err.Error(), "ike.lifetime-bytes: ") || !strings.Contains(err.Error(), "is below 1M") {
			t.Errorf("lifetime-bytes = %s: %v", n, err)
		}
	}
	for _, n := range []string{"0", `"1M"`, `"500M"`} {
		if _, err := Parse("x.toml", []byte(withIKE("lifetime-bytes = "+n))); err != nil {
			t.Errorf("lifetime-bytes = %s: %v", n, err)
		}
	}

	cfg, err := Parse("x.toml", []byte(withIn("new = true")))
	if err != nil {
		t.Fatal(err)
	}
	if w := errors.Join(cfg.Warnings...); len(cfg.Warnings) != 1 || !strings.HasPrefix(w.Error(), `x.toml:21: tunnel "gre0": sa.in.new: new = true lets this SA start without a record`) {
		t.Errorf("new = true: warnings %v", w)
	}
	if cfg, _ := Parse("x.toml", []byte(base)); len(cfg.Warnings) != 0 {
		t.Errorf("base: warnings %v", cfg.Warnings)
	}

	overlap := edit(second, `routes = ["10.3.0.0/24"]`, `routes = ["10.2.0.0/25"]`)
	cfg, err = Parse("x.toml", []byte(base+overlap))
	if err != nil {
		t.Fatal(err)
	}
	if w := errors.Join(cfg.Warnings...); len(cfg.Warnings) != 1 || !strings.HasPrefix(w.Error(), `x.toml:26: tunnel "gre1": routes[0]: 10.2.0.0/25 overlaps 10.2.0.0/24 of tunnel "gre0" (line 8)`) {
		t.Errorf("overlapping routes: warnings %v", w)
	}
	if cfg, _ := Parse("x.toml", []byte(base+second)); len(cfg.Warnings) != 0 {
		t.Errorf("disjoint routes: warnings %v", cfg.Warnings)
	}
}

// TestUser: the top-level user that up drops to; root is refused.
func TestUser(t *testing.T) {
	cfg, err := Parse("x.toml", []byte("user = \"greipsec:greipsec\"\n"+base))
	if err != nil || cfg.User != "greipsec:greipsec" {
		t.Errorf("user: %v, %q", err, cfg.User)
	}
	for _, u := range []string{`"root"`, `"0:0"`, `""`} {
		_, err := Parse("x.toml", []byte("user = "+u+"\n"+base))
		var e *Error
		if !errors.As(err, &e) || e.Line != 1 || !strings.Contains(err.Error(), "x.toml:1: user: ") {
			t.Errorf("user = %s: %v", u, err)
		}
	}
}
