package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCommandLine: every bad command line gets one clear error before
// anything starts; usage errors are marked so main prints the usage.
func TestCommandLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("[[tunnel]]\nname = \"gre0\"\nmode = \"gre\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{nil, true, "no command given"},
		{[]string{"frobnicate"}, true, `unknown command "frobnicate"`},
		{[]string{"up"}, true, "up: -c FILE is required"},
		{[]string{"up", "-x"}, true, "flag provided but not defined: -x"},
		{[]string{"up", "-c", bad, "extra"}, true, `unexpected argument "extra"`},
		{[]string{"up", "-c", filepath.Join(dir, "missing.toml")}, false, "missing.toml"},
		{[]string{"check", "-c", bad}, false, `bad.toml:3: tunnel "gre0": mode: unknown mode "gre"`},
		{[]string{"keygen"}, true, "keygen: want one algorithm"},
		{[]string{"keygen", "des"}, true, "des"},
		{[]string{"demo", "-transport", "gre"}, true, `unknown transport "gre"`},
	} {
		err := run(tc.args, new(bytes.Buffer), new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, errUsage) != tc.usage {
			t.Errorf("greipsec %s: error %v (usage %v), want one containing %q (usage %v)",
				strings.Join(tc.args, " "), err, errors.Is(err, errUsage), tc.want, tc.usage)
		}
	}
}

// TestCheckAndKeygen: the examples check clean with their derived MTU, and
// keygen prints a key of the algorithm's length.
func TestCheckAndKeygen(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"check", "-c", "../../examples/manual-a.toml"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "1442") || !strings.Contains(out.String(), "manual-a.toml: ok") {
		t.Errorf("check output:\n%s", out.String())
	}
	out.Reset()
	if err := run([]string{"keygen", "aes256gcm16"}, &out, new(bytes.Buffer)); err != nil {
		t.Fatal(err)
	}
	if k := strings.TrimSpace(out.String()); len(k) != 2+72 || !strings.HasPrefix(k, "0x") {
		t.Errorf("keygen aes256gcm16 printed %q, want 0x and 72 hex digits", k)
	}
}
