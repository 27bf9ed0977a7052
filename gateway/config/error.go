package config

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// Error is one mistake in a configuration file. For a file with mistakes
// Parse and Load return a single *Error, or several joined with
// errors.Join (one per line of the error text, at most 20); errors.As gets
// the first.
type Error struct {
	File   string // the path given to Parse or Load
	Line   int    // 1-based line, or 0 when unknown
	Column int    // 1-based column of a syntax error, or 0
	Tunnel string // `tunnel "gre0"`, or `tunnel #2` when it has no valid name; "" when not in a tunnel
	Key    string // key path, relative to the tunnel when Tunnel is set, e.g. "sa.out.key"; may be ""
	Msg    string // what is wrong and what is expected
}

// Error formats e like a compiler does:
//
//	site-a.toml:7: tunnel "gre0": mode: unknown mode "gre" (expected gre-transport, gre-tunnel or route)
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ":%d", e.Column)
		}
	}
	b.WriteString(": ")
	if e.Tunnel != "" {
		b.WriteString(e.Tunnel)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	// One line per mistake, even when a message quotes a line end.
	return oneLine.Replace(b.String())
}

var oneLine = strings.NewReplacer("\r", `\r`, "\n", `\n`)

// maxErrors is how many mistakes one Parse reports before it stops listing
// them: past that the file is probably not a greipsec configuration at all.
const maxErrors = 20

// joinErrors orders errs by line (those without one last, in the order
// found) and returns them as one error, or nil.
func joinErrors(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool {
		li, lj := errs[i].Line, errs[j].Line
		if li == 0 || lj == 0 {
			return li != 0 && lj == 0
		}
		return li < lj
	})
	if len(errs) == 1 {
		return errs[0]
	}
	out := make([]error, 0, min(len(errs), maxErrors)+1)
	for _, e := range errs[:min(len(errs), maxErrors)] {
		out = append(out, e)
	}
	if n := len(errs) - maxErrors; n > 0 {
		out = append(out, &Error{File: errs[0].File, Msg: fmt.Sprintf("%d more errors not shown", n)})
	}
	return errors.Join(out...)
}

// syntaxError turns an error of the TOML library into an *Error with the
// line and column where the library has them.
func syntaxError(file string, data []byte, err error) *Error {
	var pe toml.ParseError
	if !errors.As(err, &pe) {
		return &Error{File: file, Msg: "TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}
	}
	msg := "TOML syntax: " + pe.Message
	if secretLine(data, pe.Position.Line) {
		// The library quotes what it found, which here may be part of
		// the pre-shared key.
		msg = "TOML syntax: the value of psk is not valid TOML (not shown, as it is secret; write it in quotes)"
	}
	return &Error{
		File:   file,
		Line:   pe.Position.Line,
		Column: column(data, pe.Position),
		Msg:    msg,
	}
}

// pskKey finds a psk key being set on a line, also inside an inline table.
var pskKey = regexp.MustCompile(`(^|[{,.\s])["']?psk["']?\s*=`)

// secretLine reports whether line (1-based) of data sets a psk key.
func secretLine(data []byte, line int) bool {
	if line < 1 {
		return false
	}
	lines := bytes.SplitN(data, []byte("\n"), line+1)
	if len(lines) < line {
		return false
	}
	return pskKey.Match(lines[line-1])
}

// column returns the 1-based column of pos in data, or 0 when pos does not
// agree with itself. The library's own Col is off at the start of a line,
// so it is computed here from the byte offset, and kept only if that
// offset is on the line the library reports.
func column(data []byte, pos toml.Position) int {
	start := pos.Start
	// The library drops a byte order mark before it counts.
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		start += 3
	} else if bytes.HasPrefix(data, []byte("\xff\xfe")) || bytes.HasPrefix(data, []byte("\xfe\xff")) {
		start += 2
	}
	if pos.Line < 1 || start < 0 || start > len(data) {
		return 0
	}
	before := data[:start]
	if bytes.Count(before, []byte("\n"))+1 != pos.Line {
		return 0
	}
	return utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
}
