package seqstate

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/greipsec/greipsec/esp"
)

func gcmConfig(spi uint32, seed byte) esp.Config {
	key := bytes.Repeat([]byte{seed}, esp.AES256GCM16.KeyLen())
	return esp.Config{SPI: spi, Algorithm: esp.AES256GCM16, Key: key}
}

// gateway is one run of a gateway with a manual SA pair: it loads the
// state file, prepares its SAs, and makes them.
type gateway struct {
	f       *File
	out, in *esp.SA
}

func start(t *testing.T, path string, isNew bool, block uint64) (*gateway, error) {
	t.Helper()
	f, err := Load(path)
	if err != nil {
		return nil, err
	}
	outCfg, inCfg := gcmConfig(0x1001, 1), gcmConfig(0x1002, 2)
	outCfg.SeqBlock = block
	if err := f.Outbound(&outCfg, isNew); err != nil {
		return nil, err
	}
	if err := f.Inbound(&inCfg, isNew); err != nil {
		return nil, err
	}
	out, err := esp.NewSA(outCfg)
	if err != nil {
		return nil, err
	}
	in, err := esp.NewSA(inCfg)
	if err != nil {
		return nil, err
	}
	f.Track(in)
	return &gateway{f: f, out: out, in: in}, nil
}

// seal seals one packet with the next sequence number of sa.
func seal(t *testing.T, sa *esp.SA) ([]byte, uint64) {
	t.Helper()
	seq, ok := sa.NextSeq()
	if !ok {
		t.Fatal("NextSeq failed")
	}
	b := make([]byte, esp.HeadroomLen+4, 64)
	binary.BigEndian.PutUint32(b[esp.HeadroomLen:], uint32(seq))
	return bytes.Clone(sa.Seal(b, seq, 4)), seq
}

// TestRestart is the restart logic of C1 without processes: a gateway
// sends and receives, crashes (no Close) and starts again from its state
// file. No sequence number is sent twice under the key, and the packets
// its inbound SA had accepted before the last Sync are dropped as replays
// after the restart, while new ones are accepted.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seq.state")
	if _, err := start(t, path, false, 16); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("started without a state file and without new: %v", err)
	}
	peerOut, err := esp.NewSA(gcmConfig(0x1002, 2)) // the peer's sender
	if err != nil {
		t.Fatal(err)
	}
	sent := map[uint64]bool{}
	var captured [][]byte // what an attacker recorded of the peer's traffic
	for run := range 3 {
		g, err := start(t, path, run == 0, 16)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for range 40 {
			_, seq := seal(t, g.out)
			if sent[seq] {
				t.Fatalf("run %d: sequence number %d sent twice under one key", run, seq)
			}
			sent[seq] = true
		}
		for _, old := range captured {
			if _, _, _, err := g.in.Open(bytes.Clone(old)); err != esp.ErrReplay {
				t.Fatalf("run %d: a packet captured before the restart: %v, want ErrReplay", run, err)
			}
		}
		for range 10 {
			pkt, _ := seal(t, peerOut)
			_, _, seq, err := g.in.Open(bytes.Clone(pkt))
			if err != nil || !g.in.Accept(seq, 4) {
				t.Fatalf("run %d: fresh packet: %v", run, err)
			}
			captured = append(captured, pkt)
		}
		if err := g.f.Sync(); err != nil {
			t.Fatal(err)
		}
		// The crash: no Close. Only the test's temporary directory
		// needs the background reservation to have ended.
		g.out.WaitReservation()
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v, %v", st, err)
	}
}

// TestKeyChangeIsNew: another key for the same SPI starts from 1; the old
// key's record does not hold it back, and the file never holds the key.
func TestKeyChangeIsNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seq.state")
	f, _ := Load(path)
	c := gcmConfig(0x1001, 1)
	if err := f.Outbound(&c, true); err != nil {
		t.Fatal(err)
	}
	sa, err := esp.NewSA(c)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		sa.NextSeq()
	}
	f, err = Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c2 := gcmConfig(0x1001, 9)
	if err := f.Outbound(&c2, false); err != nil || c2.FirstSeq != 1 {
		t.Fatalf("new key: FirstSeq %d, %v", c2.FirstSeq, err)
	}
	c1 := gcmConfig(0x1001, 1)
	if err := f.Outbound(&c1, false); err != nil || c1.FirstSeq <= 5 {
		t.Fatalf("old key: FirstSeq %d, %v", c1.FirstSeq, err)
	}
	// The same key under another SPI resumes above the old mark too:
	// the nonce does not contain the SPI.
	c3 := gcmConfig(0x2001, 1)
	if err := f.Outbound(&c3, true); err != nil || c3.FirstSeq <= 5 {
		t.Fatalf("old key, new SPI: FirstSeq %d, %v", c3.FirstSeq, err)
	}
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("0101010101")) {
		t.Fatalf("the state file holds the key:\n%s", data)
	}
}

// TestRefuse: an SA that is not new is refused without its record, and a
// damaged file is refused whatever the SAs say.
func TestRefuse(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "seq.state")
	os.WriteFile(path, Encode([]Record{{Dir: Outbound, SPI: 0x5000, Mark: 7}}), 0o600)
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c := gcmConfig(0x1001, 1)
	if err := f.Outbound(&c, false); err == nil || !strings.Contains(err.Error(), "no record") {
		t.Fatalf("no record: %v", err)
	}
	for name, data := range map[string]string{
		"truncated": header + "\nout 00001001 " + strings.Repeat("00", 16) + " 12",
		"version":   "greipsec-seqstate 2\n",
		"garbage":   "\x00\x01",
		"empty":     "",
	} {
		os.WriteFile(path, []byte(data), 0o600)
		if _, err := Load(path); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
	os.WriteFile(path, []byte(header+"\n"), 0o000)
	if os.Geteuid() != 0 { // root reads it anyway
		if _, err := Load(path); err == nil || errors.Is(err, os.ErrNotExist) {
			t.Errorf("unreadable: %v", err)
		}
	}
}

// TestParseRoundTrip: Encode and Parse are inverse; Parse refuses
// duplicates and non-canonical numbers.
func TestParseRoundTrip(t *testing.T) {
	recs := []Record{
		{Dir: Outbound, SPI: 0x1001, Fingerprint: Fingerprint{1, 2, 3}, Mark: 1 << 40},
		{Dir: Inbound, SPI: 0xffffffff, Mark: 0},
	}
	got, err := Parse(Encode(recs))
	if err != nil || len(got) != 2 || got[0] != recs[0] || got[1] != recs[1] {
		t.Fatalf("Parse(Encode) = %v, %v", got, err)
	}
	fp := strings.Repeat("ab", 16)
	for _, bad := range []string{
		"out 00001001 " + fp + " 1\nout 00001001 " + fp + " 2\n",
		"out 00001001 " + fp + " 01\n",
		"out 1001 " + fp + " 1\n",
		"up 00001001 " + fp + " 1\n",
		"out 00001001 " + fp[:30] + " 1\n",
		"out 00001001 " + fp + " 18446744073709551616\n",
	} {
		if _, err := Parse([]byte(header + "\n" + bad)); err == nil {
			t.Errorf("Parse accepted %q", bad)
		}
	}
}

// FuzzParse: Parse never panics, and what it accepts encodes back to the
// same bytes.
func FuzzParse(f *testing.F) {
	f.Add(Encode([]Record{{Dir: Outbound, SPI: 0x1001, Mark: 1 << 20}, {Dir: Inbound, SPI: 0x1002, Mark: 99}}))
	f.Add([]byte(header + "\n"))
	f.Add([]byte("greipsec-seqstate 1\nin 00000100 " + strings.Repeat("0f", 16) + " 18446744073709551615\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := Parse(data)
		if err != nil {
			return
		}
		if again := Encode(recs); !bytes.Equal(again, data) {
			t.Fatalf("Encode(Parse(%q)) = %q", data, again)
		}
	})
}
