package esp

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// fuzzSAs returns one SA per algorithm, without and with ESN, keyed with
// testKey: the seed corpus in testdata/fuzz/FuzzOpen holds packets they
// sealed.
func fuzzSAs(t testing.TB) []*SA {
	var sas []*SA
	for _, a := range algorithms {
		for _, esn := range []bool{false, true} {
			sas = append(sas, newTestSA(t, a, esn))
		}
	}
	return sas
}

var openErrors = []error{ErrShort, ErrSPI, ErrReplay, ErrAuth, ErrPadding, ErrLifetime}

// FuzzOpen feeds arbitrary packets to Open: it must not panic, must return
// one of its sentinel errors, and a payload it returns must lie inside the
// input, starting at HeadroomLen. A packet that opens and has minimal
// padding must be exactly what Seal makes of its payload.
func FuzzOpen(f *testing.F) {
	sas := fuzzSAs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, sa := range sas {
			in := bytes.Clone(data)
			payload, nh, seq, err := sa.Open(in)
			if err != nil {
				known := false
				for _, e := range openErrors {
					known = known || errors.Is(err, e)
				}
				if !known || payload != nil {
					t.Fatalf("Open: err %v, payload %x", err, payload)
				}
				continue
			}
			base := uintptr(unsafe.Pointer(unsafe.SliceData(in)))
			p := uintptr(unsafe.Pointer(unsafe.SliceData(payload)))
			if p != base+uintptr(payloadOffset(sa)) || sa.Headroom()+len(payload)+2+sa.transform.ICVLen() > len(in) {
				t.Fatalf("payload at offset %d, %d bytes, outside the %d-byte input", p-base, len(payload), len(in))
			}
			if seq == 0 || !sa.window.Check(seq) {
				t.Fatalf("Open accepted seq %d", seq)
			}
			if len(data) == sa.Headroom()+len(payload)+sa.TrailerLen(len(payload)) {
				if again := resealPayload(sa, payload, seq, nh, data); !bytes.Equal(again, data) {
					t.Fatalf("resealed packet differs:\n got %x\nwant %x", again, data)
				}
			}
		}
	})
}

// resealPayload seals payload as sealPayload does, but with the IV of
// orig where the SA would draw its own (AES-CBC).
func resealPayload(sa *SA, payload []byte, seq uint64, nh byte, orig []byte) []byte {
	c, ok := sa.crypt.(*macCryptor)
	if !ok || !c.cbc {
		return sealPayload(sa, payload, seq, nh)
	}
	h, pad := sa.Headroom(), sa.transform.padLen(len(payload))
	b := make([]byte, h+len(payload)+pad+2, h+len(payload)+sa.TrailerLen(len(payload)))
	copy(b[h:], payload)
	for i := range pad {
		b[h+len(payload)+i] = byte(i + 1)
	}
	b[len(b)-2], b[len(b)-1] = byte(pad), nh
	return c.sealWithIV(b, sa.spi, seq, orig[HeaderLen:h])
}

// TestFuzzSeedCorpus checks that the seed corpus still holds packets that
// open: the ones named valid-* must open under one of fuzzSAs, the others
// must not (they are truncated or mangled).
func TestFuzzSeedCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzOpen/*")
	if err != nil {
		t.Fatal(err)
	}
	valid := 0
	for _, name := range files {
		data := readCorpusBytes(t, name)
		opened := 0
		for _, sa := range fuzzSAs(t) {
			if _, _, _, err := sa.Open(bytes.Clone(data)); err == nil {
				opened++
			}
		}
		isValid := strings.HasPrefix(filepath.Base(name), "valid-")
		if isValid {
			valid++
		}
		if (opened > 0) != isValid {
			t.Errorf("%s: opened under %d SAs", name, opened)
		}
	}
	if valid < 6 {
		t.Fatalf("only %d valid seeds in %d files", valid, len(files))
	}
}

// readCorpusBytes reads a one-value []byte file in the go test fuzz v1
// format.
func readCorpusBytes(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
		!strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
		t.Fatalf("%s: not a go test fuzz v1 []byte file", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return []byte(s)
}
