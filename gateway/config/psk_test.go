package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPSKHygiene (review L5): a short key is refused unless allow-short-psk
// says otherwise; the public example key is flagged (ExamplePSK) for "up"
// to refuse; a key file or a configuration with an inline key readable by
// group or others gives a warning naming the file and line. No message
// shows the key.
func TestPSKHygiene(t *testing.T) {
	short := edit(ikeBase, `psk = "`+testPSK+`"`, `psk = "0123456789abcde"`) // 15 bytes
	_, err := Parse("x.toml", []byte(short))
	var e *Error
	if !errors.As(err, &e) || e.Line != 11 || !strings.Contains(err.Error(), `tunnel "gre0": ike.psk: the pre-shared key is 15 bytes; at least 16`) ||
		!strings.Contains(err.Error(), "allow-short-psk = true") || strings.Contains(err.Error(), "0123456789abcde") {
		t.Errorf("15-byte key: %v", err)
	}
	if _, err := Parse("x.toml", []byte(short+"allow-short-psk = true\n")); err != nil {
		t.Errorf("15-byte key with allow-short-psk: %v", err)
	}
	if _, err := Parse("x.toml", []byte(edit(ikeBase, `psk = "`+testPSK+`"`, `psk = "0123456789abcdef"`))); err != nil {
		t.Errorf("16-byte key: %v", err)
	}
	if _, err := Parse("x.toml", []byte(edit(ikeBase, `psk = "`+testPSK+`"`, `psk = "0x`+strings.Repeat("ab", 15)+`"`))); err == nil {
		t.Error("15 bytes in hex accepted")
	}

	// The example key: parsed, flagged with its line.
	cfg, err := Parse("x.toml", []byte(edit(ikeBase, testPSK, ExamplePSK)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ExamplePSK(); err == nil || !strings.HasPrefix(err.Error(), `x.toml:11: tunnel "gre0": ike.psk: this is the example pre-shared key`) ||
		strings.Contains(err.Error(), ExamplePSK) {
		t.Errorf("ExamplePSK() = %v", err)
	}
	if cfg, _ := Parse("x.toml", []byte(edit(ikeBase, testPSK, "EXAMPLE-PSK-1-anybody-can-read-this"))); cfg.ExamplePSK() == nil {
		t.Error("ExamplePSK() of aws-sec.toml's example key: nil")
	}
	if cfg, _ := Parse("x.toml", []byte(ikeBase)); cfg.ExamplePSK() != nil {
		t.Errorf("ExamplePSK() of another key: %v", cfg.ExamplePSK())
	}

	// Permissions: warnings, never errors.
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, mode); err != nil { // past the umask
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name     string
		cfgMode  os.FileMode
		keyMode  os.FileMode // 0: inline psk
		wantWarn string
	}{
		{"inline, 0600", 0o600, 0, ""},
		{"inline, 0644", 0o644, 0, `ike.psk: the pre-shared key is in this file, which is readable by its group or by others (mode 0644): chmod 600 gw.toml`},
		{"inline, 0640", 0o640, 0, `(mode 0640)`},
		{"psk-file 0600, config 0644", 0o644, 0o600, ""},
		{"psk-file 0604", 0o600, 0o604, `ike.psk-file: gw.psk is readable by its group or by others (mode 0604): chmod 600 it`},
	} {
		doc := ikeBase
		if tc.keyMode != 0 {
			write("gw.psk", testPSK+"\n", tc.keyMode)
			doc = edit(ikeBase, `psk = "`+testPSK+`"`, `psk-file = "gw.psk"`)
		}
		path := write("gw.toml", doc, tc.cfgMode)
		cfg, err := Load(path)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := errors.Join(cfg.Warnings...)
		switch {
		case tc.wantWarn == "" && got != nil:
			t.Errorf("%s: warnings %v, want none", tc.name, got)
		case tc.wantWarn != "" && (len(cfg.Warnings) != 1 || !strings.Contains(got.Error(), tc.wantWarn) || !strings.HasPrefix(got.Error(), path+":11: ")):
			t.Errorf("%s: warnings %v, want one at line 11 with %q", tc.name, got, tc.wantWarn)
		}
		if got != nil && strings.Contains(got.Error(), testPSK) {
			t.Errorf("%s: a warning shows the key", tc.name)
		}
	}
}
