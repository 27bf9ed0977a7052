// Package seqstate keeps the sequence number state of manually keyed ESP
// SAs across restarts, in one file per gateway, so that a restart never
// sends a sequence number twice under one key (which with AES-GCM or
// ChaCha20-Poly1305 reuses a nonce, RFC 4106 §8) and never accepts again
// the packets a restarted receiver had already accepted.
//
// For each SA the file holds its direction, SPI, a fingerprint of its key
// (never the key) and a mark:
//
//   - outbound: the highest sequence number reserved. Numbers are reserved
//     in blocks (esp.Config.SeqBlock), and a block is written and synced to
//     disk before any number in it is sent (esp.SeqReserver). After a crash
//     the SA resumes above the mark, skipping at most one block.
//   - inbound: the top of the anti-replay window, written every Run
//     interval and by Close. After a restart every sequence number up to it
//     is dropped as a replay (esp.Config.ReplayFloor).
//
// Each start skips what is left of the current block: without ESN, whose
// sequence numbers end at 2^32, a key survives 4096 restarts with the
// default block of 2^20 before its SA stops sending (fail-closed; use ESN,
// or a new key).
//
// What a crash exposes: the inbound top is written periodically, so after
// a crash (not a clean stop) packets the SA accepted after the last write
// — at most one Run interval's worth — can be replayed once into the
// restarted gateway. Outbound, nothing is exposed: no number is sent
// before it is durable. A clean stop (Close) writes both exactly.
//
// A fingerprint that differs from the record's means the key changed: the
// SA is new and starts from 1. An SA without a record may start only when
// the configuration says it is new (its key has never been used);
// otherwise, and when the file is missing, the gateway refuses to start,
// since the state that kept the key safe is gone. A file that cannot be
// read or parsed is always refused: it might be the only record of a key's
// use.
//
// The file format is text, one record per line after a version line:
//
//	greipsec-seqstate 1
//	out 00001001 3f2a…(32 hex digits) 2097152
//	in 00001002 9c01…(32 hex digits) 1234567
package seqstate

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/greipsec/greipsec/esp"
)

// header is the first line of a state file, with its format version.
const header = "greipsec-seqstate 1"

// maxFileSize bounds what Load reads: far more than any gateway's SAs.
const maxFileSize = 1 << 20

// Direction is the direction of an SA.
type Direction uint8

const (
	Outbound Direction = iota + 1
	Inbound
)

func (d Direction) String() string {
	switch d {
	case Outbound:
		return "out"
	case Inbound:
		return "in"
	}
	return fmt.Sprintf("Direction(%d)", uint8(d))
}

// Fingerprint identifies an SA's key material without revealing it.
type Fingerprint [16]byte

// fingerprintLabel keys the fingerprint HMAC, so that it is not a plain
// hash of the key.
const fingerprintLabel = "greipsec seqstate key fingerprint v1"

// FingerprintOf returns the fingerprint of c's transform and keys: HMAC-
// SHA-256 under a fixed label, truncated to 16 bytes. The keys are
// secrets of full strength, so the fingerprint reveals nothing of them.
func FingerprintOf(c *esp.Config) Fingerprint {
	m := hmac.New(sha256.New, []byte(fingerprintLabel))
	var hdr [4]byte
	hdr[0], hdr[1] = byte(c.Algorithm), byte(c.Integrity)
	binary.BigEndian.PutUint16(hdr[2:], uint16(len(c.Key)))
	m.Write(hdr[:])
	m.Write(c.Key)
	m.Write(c.AuthKey)
	var fp Fingerprint
	copy(fp[:], m.Sum(nil))
	return fp
}

// Record is one SA's entry in the file.
type Record struct {
	Dir         Direction
	SPI         uint32
	Fingerprint Fingerprint
	Mark        uint64 // outbound: highest reserved; inbound: window top
}

// Parse reads a state file's contents. It accepts exactly what Encode
// writes: the version line, then records with a known direction, an
// 8-digit hex SPI, a 32-digit hex fingerprint and a decimal mark, each
// (direction, SPI) once.
func Parse(data []byte) ([]Record, error) {
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("seqstate: file is %d bytes, more than %d", len(data), maxFileSize)
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) == 0 || lines[0] != header {
		return nil, fmt.Errorf("seqstate: line 1: want %q", header)
	}
	if lines[len(lines)-1] != "" {
		return nil, fmt.Errorf("seqstate: line %d: the file does not end with a newline (cut short?)", len(lines))
	}
	lines = lines[1 : len(lines)-1]
	recs := make([]Record, 0, len(lines))
	seen := make(map[[2]uint64]bool, len(lines))
	for i, line := range lines {
		f := strings.Split(line, " ")
		if len(f) != 4 {
			return nil, fmt.Errorf("seqstate: line %d: want \"out|in SPI FINGERPRINT MARK\"", i+2)
		}
		var r Record
		switch f[0] {
		case "out":
			r.Dir = Outbound
		case "in":
			r.Dir = Inbound
		default:
			return nil, fmt.Errorf("seqstate: line %d: direction %q (want out or in)", i+2, f[0])
		}
		spi, err := strconv.ParseUint(f[1], 16, 32)
		if err != nil || f[1] != fmt.Sprintf("%08x", spi) {
			return nil, fmt.Errorf("seqstate: line %d: SPI %q (want 8 lower-case hex digits)", i+2, f[1])
		}
		r.SPI = uint32(spi)
		fp, err := hex.DecodeString(f[2])
		if err != nil || len(fp) != len(r.Fingerprint) || hex.EncodeToString(fp) != f[2] {
			return nil, fmt.Errorf("seqstate: line %d: fingerprint (want %d lower-case hex digits)", i+2, 2*len(r.Fingerprint))
		}
		copy(r.Fingerprint[:], fp)
		if r.Mark, err = strconv.ParseUint(f[3], 10, 64); err != nil || f[3] != strconv.FormatUint(r.Mark, 10) {
			return nil, fmt.Errorf("seqstate: line %d: mark %q (want a decimal number)", i+2, f[3])
		}
		k := [2]uint64{uint64(r.Dir), uint64(r.SPI)}
		if seen[k] {
			return nil, fmt.Errorf("seqstate: line %d: SA %v %08x twice", i+2, r.Dir, r.SPI)
		}
		seen[k] = true
		recs = append(recs, r)
	}
	return recs, nil
}

// Encode writes recs in the format Parse reads.
func Encode(recs []Record) []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, r := range recs {
		fmt.Fprintf(&b, "%v %08x %x %d\n", r.Dir, r.SPI, r.Fingerprint[:], r.Mark)
	}
	return b.Bytes()
}

// File is a gateway's state file, loaded. Its methods are safe for
// concurrent use; every write replaces the file atomically (a temporary
// file, written and synced, renamed over it, and the directory synced).
type File struct {
	path    string
	missing bool

	mu      sync.Mutex // guards recs, tracked, and writing the file
	recs    []Record
	tracked map[uint32]*esp.SA // inbound SAs whose top Sync records
}

// Load reads the state file at path. A missing file is not an error here:
// it is one for each SA that is not new (see Outbound and Inbound). A file
// that exists but cannot be read or parsed is an error.
func Load(path string) (*File, error) {
	f := &File{path: path, tracked: map[uint32]*esp.SA{}}
	data, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		f.missing = true
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seqstate: %v", err)
	}
	if f.recs, err = Parse(data); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return f, nil
}

func readLimited(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("%s: more than %d bytes", path, maxFileSize)
	}
	return data, nil
}

// Path returns the file's path.
func (f *File) Path() string { return f.path }

// Records returns a copy of the records.
func (f *File) Records() []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.recs)
}

// find returns the record of (dir, spi), or nil.
func (f *File) find(dir Direction, spi uint32) *Record {
	for i := range f.recs {
		if f.recs[i].Dir == dir && f.recs[i].SPI == spi {
			return &f.recs[i]
		}
	}
	return nil
}

// resume finds where SA (dir, c) resumes: the record's mark if its key is
// the same, 0 if the SA is new, or an error.
func (f *File) resume(dir Direction, c *esp.Config, isNew bool) (uint64, error) {
	fp := FingerprintOf(c)
	var mark uint64
	known := false
	for _, r := range f.recs {
		// The key, not the SPI, is what must not repeat a nonce:
		// any record of this key counts.
		if r.Fingerprint == fp && (r.Dir == dir || dir == Outbound) {
			mark, known = max(mark, r.Mark), true
		}
	}
	if known {
		return mark, nil
	}
	r := f.find(dir, c.SPI)
	switch {
	case r != nil:
		// Same SA, another key: the key was changed, the SA is new.
	case isNew:
	case f.missing:
		return 0, fmt.Errorf("seqstate: SA %v %#x: state file %s is missing; without it a restart could reuse sequence numbers under this key. If the key has never been used, mark the SA as new", dir, c.SPI, f.path)
	default:
		return 0, fmt.Errorf("seqstate: SA %v %#x: no record in %s; without one a restart could reuse sequence numbers under this key. If the key has never been used, mark the SA as new", dir, c.SPI, f.path)
	}
	return 0, nil
}

// set puts (dir, spi) with fp and mark into the records.
func (f *File) set(dir Direction, spi uint32, fp Fingerprint, mark uint64) {
	if r := f.find(dir, spi); r != nil {
		r.Fingerprint, r.Mark = fp, mark
		return
	}
	f.recs = append(f.recs, Record{Dir: dir, SPI: spi, Fingerprint: fp, Mark: mark})
}

// Outbound prepares c, an outbound manually keyed SA, to resume: FirstSeq
// above every number reserved under its key before, and a Reserver that
// records reservations in the file. isNew allows an SA without a record
// (its key has never been used). The first reservation is written when
// esp.NewSA makes the SA.
func (f *File) Outbound(c *esp.Config, isNew bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	mark, err := f.resume(Outbound, c, isNew)
	if err != nil {
		return err
	}
	c.FirstSeq = mark + 1
	c.Reserver = &reserver{f: f, spi: c.SPI, fp: FingerprintOf(c)}
	return nil
}

// Inbound prepares c, an inbound manually keyed SA, to resume: every
// sequence number up to the recorded window top is a replay. isNew allows
// an SA without a record. Track the SA once made, so that its top is
// recorded.
func (f *File) Inbound(c *esp.Config, isNew bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	mark, err := f.resume(Inbound, c, isNew)
	if err != nil {
		return err
	}
	c.ReplayFloor = mark
	f.set(Inbound, c.SPI, FingerprintOf(c), mark)
	return nil
}

// Track has Sync and Close record the window top of sa, an inbound SA made
// from a Config that Inbound prepared.
func (f *File) Track(sa *esp.SA) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tracked[sa.SPI()] = sa
}

// Untrack stops recording the window top of sa, an inbound SA that is
// being removed (a reload took its tunnel away); its record stays. Sync
// first, to record its last top.
func (f *File) Untrack(sa *esp.SA) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tracked[sa.SPI()] == sa {
		delete(f.tracked, sa.SPI())
	}
}

// Sync records the window tops of the tracked inbound SAs and writes the
// file if any moved.
func (f *File) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	changed := f.missing
	for spi, sa := range f.tracked {
		if r := f.find(Inbound, spi); r != nil && sa.ReplayTop() > r.Mark {
			r.Mark, changed = sa.ReplayTop(), true
		}
	}
	if !changed {
		return nil
	}
	return f.writeLocked()
}

// Run calls Sync every interval until ctx is done, then once more. Errors
// go to onError (which may be nil); Run goes on after them.
func (f *File) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			if err := f.Sync(); err != nil && onError != nil {
				onError(err)
			}
			return
		case <-t.C:
			if err := f.Sync(); err != nil && onError != nil {
				onError(err)
			}
		}
	}
}

// Close records the final window tops (Sync) at a clean stop.
func (f *File) Close() error { return f.Sync() }

// writeLocked replaces the file with the records: a temporary file in the
// same directory, written and synced, renamed over the old one, and the
// directory synced, so that a crash leaves either the old file or the new
// one, complete.
func (f *File) writeLocked() error {
	dir := filepath.Dir(f.path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(f.path)+".tmp*")
	if err != nil {
		return fmt.Errorf("seqstate: %v", err)
	}
	defer os.Remove(tmp.Name()) // fails harmlessly after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("seqstate: %v", err)
	}
	if _, err := tmp.Write(Encode(f.recs)); err != nil {
		tmp.Close()
		return fmt.Errorf("seqstate: writing %s: %v", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("seqstate: syncing %s: %v", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("seqstate: %v", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("seqstate: %v", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("seqstate: %v", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("seqstate: syncing directory %s: %v", dir, err)
	}
	f.missing = false
	return nil
}

// reserver is the esp.SeqReserver of one outbound SA.
type reserver struct {
	f   *File
	spi uint32
	fp  Fingerprint
}

// Reserve records upTo as the SA's mark and writes the file before it
// returns.
func (r *reserver) Reserve(upTo uint64) error {
	f := r.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.set(Outbound, r.spi, r.fp, upTo)
	return f.writeLocked()
}
