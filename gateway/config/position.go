package config

import (
	"strconv"
	"strings"
)

// BurntSushi/toml (v1.6) keeps the position of every key, but only
// internally and under a name that leaves out array indices, so the keys of
// the second [[tunnel]] would get the lines of the first's. positions is a
// small scanner of its own that runs over a document the library has already
// accepted and records the line on which each key (or table) is first
// defined.
//
// It understands only as much TOML as it must to stay in step: comments,
// table and array-of-table headers, bare, quoted and dotted keys, the four
// kinds of strings, arrays and inline tables. Everything else is a value it
// skips. Because the input is known to be valid TOML it never reports an
// error; if it ever lost its way the worst outcome is a missing or wrong line
// number, which Parse guards against by comparing its count of [[tunnel]]
// tables with the library's.

// positions maps a key path to the line (1-based) where it is defined.
// A path is the chain of keys from the top of the document; the elements
// of an array (of tables, or of values) add their index after the array's
// key. Not safe for concurrent use while being built; read-only after.
type positions struct {
	lines  map[string]int // pathKey(path) → line
	arrays map[string]int // pathKey(path of an array of tables) → element count
}

// pathKey joins a path into a map key. Indices are spelled "#N"; a quoted
// TOML key with an ASCII unit separator in it could collide, which would
// only make a line number wrong.
func pathKey(path []string) string { return strings.Join(path, "\x1f") }

// index is the path element for element i of an array.
func index(i int) string { return "#" + strconv.Itoa(i) }

// line returns the line of path, or of its longest prefix that has one, so
// that a missing key is reported at the table that should hold it. It
// returns 0 when nothing is known.
func (p *positions) line(path []string) int {
	if p == nil {
		return 0
	}
	for n := len(path); n > 0; n-- {
		if l, ok := p.lines[pathKey(path[:n])]; ok {
			return l
		}
	}
	return 0
}

// count returns how many elements the array of tables at path has.
func (p *positions) count(path []string) int {
	if p == nil {
		return 0
	}
	return p.arrays[pathKey(path)]
}

// scanPositions scans data, which must be a document that toml.Decode
// accepted.
func scanPositions(data []byte) *positions {
	s := &scanner{
		data: data,
		line: 1,
		pos:  &positions{lines: make(map[string]int), arrays: make(map[string]int)},
	}
	if strings.HasPrefix(string(data), "\xef\xbb\xbf") {
		s.i = 3
	}
	s.document()
	return s.pos
}

type scanner struct {
	data []byte
	i    int // next byte
	line int // line of data[i]
	pos  *positions
}

func (s *scanner) eof() bool { return s.i >= len(s.data) }

// peek returns the byte k ahead of the next one, or 0 past the end.
func (s *scanner) peek(k int) byte {
	if s.i+k < len(s.data) {
		return s.data[s.i+k]
	}
	return 0
}

// advance moves past n bytes, counting the newlines among them.
func (s *scanner) advance(n int) {
	for ; n > 0 && s.i < len(s.data); n-- {
		if s.data[s.i] == '\n' {
			s.line++
		}
		s.i++
	}
}

// record notes that path is defined on line, unless it was defined earlier.
func (s *scanner) record(path []string, line int) {
	k := pathKey(path)
	if _, ok := s.pos.lines[k]; !ok {
		s.pos.lines[k] = line
	}
}

// skipBlank skips spaces and tabs, and with newlines also line ends and
// comments.
func (s *scanner) skipBlank(newlines bool) {
	for !s.eof() {
		switch c := s.peek(0); {
		case c == ' ' || c == '\t':
			s.advance(1)
		case newlines && (c == '\n' || c == '\r'):
			s.advance(1)
		case newlines && c == '#':
			for !s.eof() && s.peek(0) != '\n' {
				s.advance(1)
			}
		default:
			return
		}
	}
}

func (s *scanner) document() {
	var table []string // path of the current [table]
	for {
		s.skipBlank(true)
		if s.eof() {
			return
		}
		start := s.i
		if s.peek(0) == '[' {
			table = s.header()
		} else {
			s.keyValue(table)
		}
		if s.i == start { // cannot happen on valid TOML; never loop forever
			s.advance(1)
		}
	}
}

// header reads a [table] or [[array.of.tables]] header and returns the
// path that the following keys belong to.
func (s *scanner) header() []string {
	line := s.line
	array := s.peek(1) == '['
	if array {
		s.advance(2)
	} else {
		s.advance(1)
	}
	keys := s.key()
	s.skipBlank(false)
	if array {
		s.advance(2) // "]]"
	} else {
		s.advance(1)
	}
	if len(keys) == 0 {
		return nil
	}
	// Resolve the parents: a key that names an array of tables means its
	// last element, as TOML defines for [a.b] after [[a]].
	var path []string
	for _, k := range keys[:len(keys)-1] {
		path = append(path, k)
		if n := s.pos.arrays[pathKey(path)]; n > 0 {
			path = append(path, index(n-1))
		}
		s.record(path, line)
	}
	path = append(path, keys[len(keys)-1])
	if array {
		k := pathKey(path)
		n := s.pos.arrays[k]
		s.pos.arrays[k] = n + 1
		s.record(path, line)
		path = append(path, index(n))
	}
	s.record(path, line)
	return path
}

// keyValue reads "key = value" (key possibly dotted) in table.
func (s *scanner) keyValue(table []string) {
	line := s.line
	keys := s.key()
	s.skipBlank(false)
	if s.peek(0) == '=' {
		s.advance(1)
	}
	s.skipBlank(false)
	path := append([]string(nil), table...)
	for _, k := range keys {
		path = append(path, k)
		s.record(path, line)
	}
	s.value(path)
}

// key reads a possibly dotted key and returns its parts.
func (s *scanner) key() []string {
	var parts []string
	for {
		s.skipBlank(false)
		switch c := s.peek(0); c {
		case '"', '\'':
			start := s.i
			s.str()
			raw := string(s.data[start:s.i])
			if c == '"' {
				if u, err := strconv.Unquote(raw); err == nil {
					raw = u
				} else if len(raw) >= 2 {
					// An unterminated string at the end of the file
					// is one quote: the TOML decoder reports it.
					raw = raw[1 : len(raw)-1]
				}
			} else if len(raw) >= 2 {
				raw = raw[1 : len(raw)-1]
			}
			parts = append(parts, raw)
		default:
			start := s.i
			for !s.eof() && isBareKeyByte(s.peek(0)) {
				s.advance(1)
			}
			if s.i == start {
				return parts
			}
			parts = append(parts, string(s.data[start:s.i]))
		}
		s.skipBlank(false)
		if s.peek(0) != '.' {
			return parts
		}
		s.advance(1)
	}
}

// isBareKeyByte reports whether c may appear in a bare key. TOML 1.1 also
// allows non-ASCII letters; all bytes of those are ≥ 0x80.
func isBareKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c >= 0x80
}

// value skips one value; arrays and inline tables record their contents
// under path.
func (s *scanner) value(path []string) {
	switch s.peek(0) {
	case '"', '\'':
		s.str()
	case '[':
		s.array(path)
	case '{':
		s.inlineTable(path)
	default: // number, boolean, date-time: up to the next delimiter
		for !s.eof() {
			switch s.peek(0) {
			case ',', ']', '}', '\n', '\r', '#':
				return
			}
			s.advance(1)
		}
	}
}

func (s *scanner) array(path []string) {
	s.advance(1) // '['
	n := 0
	for {
		s.skipBlank(true)
		switch s.peek(0) {
		case 0:
			if s.eof() {
				return
			}
		case ']':
			s.advance(1)
			return
		case ',':
			s.advance(1)
			n++
			continue
		}
		start := s.i
		elem := append(append([]string(nil), path...), index(n))
		s.record(elem, s.line)
		s.value(elem)
		if s.i == start {
			s.advance(1)
		}
	}
}

func (s *scanner) inlineTable(path []string) {
	s.advance(1) // '{'
	for {
		s.skipBlank(true) // TOML 1.1 allows newlines in inline tables
		switch s.peek(0) {
		case 0:
			if s.eof() {
				return
			}
		case '}':
			s.advance(1)
			return
		case ',':
			s.advance(1)
			continue
		}
		start := s.i
		s.keyValue(path)
		if s.i == start {
			s.advance(1)
		}
	}
}

// str skips a basic, literal, multi-line basic or multi-line literal string.
func (s *scanner) str() {
	q := s.peek(0)
	escapes := q == '"'
	if s.peek(1) == q && s.peek(2) == q {
		s.advance(3)
		for !s.eof() {
			c := s.peek(0)
			if escapes && c == '\\' {
				s.advance(2)
				continue
			}
			if c == q && s.peek(1) == q && s.peek(2) == q {
				s.advance(3)
				// Up to two more quotes may close the string
				// ("""a"""" is the string `a"`).
				for k := 0; k < 2 && s.peek(0) == q; k++ {
					s.advance(1)
				}
				return
			}
			s.advance(1)
		}
		return
	}
	s.advance(1)
	for !s.eof() {
		c := s.peek(0)
		switch {
		case escapes && c == '\\':
			s.advance(2)
		case c == q:
			s.advance(1)
			return
		case c == '\n': // not valid; stop rather than run on
			return
		default:
			s.advance(1)
		}
	}
}
