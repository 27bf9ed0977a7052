package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// parser collects the mistakes of one file.
type parser struct {
	file  string
	pos   *positions // nil when lines are unknown
	errs  []*Error
	warns []*Error // Config.Warnings
	// examplePSK: the keys that hold ExamplePSK; inlinePSK: every psk
	// key (the key is in the file itself).
	examplePSK, inlinePSK []*Error
	tables                []*table // every table read, for tests
}

// table is one TOML table being read. Its typed getters check the type of a
// value and report a mismatch; every key they are asked for is known, and
// every key present that nobody asked for is reported by finish as unknown.
type table struct {
	p      *parser
	tunnel *string  // label of the tunnel for messages; nil at the top
	base   []string // path of the table from the top of the document, indices included
	rel    []string // path for messages: relative to the tunnel
	m      map[string]any
	known  []string
	used   map[string]bool
}

func (p *parser) table(tunnel *string, base, rel []string, m map[string]any) *table {
	t := &table{p: p, tunnel: tunnel, base: base, rel: rel, m: m, used: make(map[string]bool)}
	p.tables = append(p.tables, t)
	return t
}

// path returns the message path of key k ("sa.out.key"), quoting parts
// the way TOML would need them; an element of an array of tables (an
// index(i) part) is written "forward[0]".
func (t *table) path(k string) string {
	var b strings.Builder
	for _, part := range append(slices.Clip(t.rel), k) {
		if n, ok := strings.CutPrefix(part, "#"); ok && b.Len() > 0 {
			b.WriteString("[" + n + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(toml.Key{part}.String())
	}
	return b.String()
}

// line returns the line of key k, or of the table when k is absent.
func (t *table) line(k string) int {
	return t.p.pos.line(append(slices.Clip(t.base), k))
}

func (t *table) label() string {
	if t.tunnel == nil {
		return ""
	}
	return *t.tunnel
}

// errorf reports a mistake in the value of key k.
func (t *table) errorf(k, format string, args ...any) {
	t.p.errs = append(t.p.errs, &Error{
		File:   t.p.file,
		Line:   t.line(k),
		Tunnel: t.label(),
		Key:    t.path(k),
		Msg:    fmt.Sprintf(format, args...),
	})
}

// newError returns an Error about key k, without reporting it.
func (t *table) newError(k, msg string) *Error {
	return &Error{File: t.p.file, Line: t.line(k), Tunnel: t.label(), Key: t.path(k), Msg: msg}
}

// elemErrorf reports a mistake in element i of the array at key k.
func (t *table) elemErrorf(k string, i int, format string, args ...any) {
	t.p.errs = append(t.p.errs, &Error{
		File:   t.p.file,
		Line:   t.p.pos.line(append(slices.Clip(t.base), k, index(i))),
		Tunnel: t.label(),
		Key:    fmt.Sprintf("%s[%d]", t.path(k), i),
		Msg:    fmt.Sprintf(format, args...),
	})
}

// get returns the raw value of k and whether it is present, and marks k as
// known.
func (t *table) get(k string) (any, bool) {
	if !slices.Contains(t.known, k) {
		t.known = append(t.known, k)
	}
	v, ok := t.m[k]
	if ok {
		t.used[k] = true
	}
	return v, ok
}

// reject reports k, if present, with a message saying why it does not
// belong here, instead of finish calling it unknown. It does not make k
// known: suggestions never propose it.
func (t *table) reject(k, format string, args ...any) {
	if _, ok := t.m[k]; ok {
		t.used[k] = true
		t.errorf(k, format, args...)
	}
}

// has reports whether k is present, and marks it as known.
func (t *table) has(k string) bool {
	_, ok := t.get(k)
	return ok
}

// require reports k as missing unless it is present; what says what it
// should hold.
func (t *table) require(k, what string) bool {
	if t.has(k) {
		return true
	}
	t.errorf(k, "missing (%s)", what)
	return false
}

// str returns the string at k. ok is false when k is absent or (reported)
// not a string.
func (t *table) str(k string) (s string, ok bool) {
	v, present := t.get(k)
	if !present {
		return "", false
	}
	if s, ok = v.(string); !ok {
		t.errorf(k, "must be a string, got %s", describe(v))
	}
	return s, ok
}

// integer returns the integer at k, checked against [lo, hi]; why, shown
// when n is below lo, says where lo comes from. ok is false when k is
// absent or (reported) not an integer in range.
func (t *table) integer(k string, lo, hi int64, why string) (n int64, ok bool) {
	v, present := t.get(k)
	if !present {
		return 0, false
	}
	n, ok = v.(int64)
	if !ok {
		msg := "must be an integer, got " + describe(v)
		if s, isStr := v.(string); isStr {
			if _, err := strconv.ParseInt(s, 0, 64); err == nil {
				msg += fmt.Sprintf("; write numbers without quotes: %s = %s", t.rel1(k), s)
			}
		}
		t.errorf(k, "%s", msg)
		return 0, false
	}
	switch {
	case n < lo && hi == math.MaxInt64:
		t.errorf(k, "must be %d or more%s, got %d", lo, why, n)
		return 0, false
	case n < lo:
		t.errorf(k, "must be between %d and %d%s, got %d", lo, hi, why, n)
		return 0, false
	case n > hi:
		t.errorf(k, "must be between %d and %d, got %d", lo, hi, n)
		return 0, false
	}
	return n, true
}

// rel1 is the key as written in its own table.
func (t *table) rel1(k string) string { return toml.Key{k}.String() }

// boolean returns the boolean at k. ok is false when k is absent or
// (reported) not a boolean.
func (t *table) boolean(k string) (b bool, ok bool) {
	v, present := t.get(k)
	if !present {
		return false, false
	}
	b, ok = v.(bool)
	if !ok {
		msg := "must be true or false, got " + describe(v)
		if s, isStr := v.(string); isStr && (s == "true" || s == "false") {
			msg += fmt.Sprintf("; write it without quotes: %s = %s", t.rel1(k), s)
		}
		t.errorf(k, "%s", msg)
	}
	return b, ok
}

// strings returns the array of strings at k. ok is false when k is absent
// or (reported) not an array of strings.
func (t *table) strings(k string) (list []string, ok bool) {
	v, present := t.get(k)
	if !present {
		return nil, false
	}
	arr, isArr := v.([]any)
	if !isArr {
		if s, isStr := v.(string); isStr {
			t.errorf(k, "must be an array of strings, got a string; write %s = [%q]", t.rel1(k), s)
		} else {
			t.errorf(k, "must be an array of strings, got %s", describe(v))
		}
		return nil, false
	}
	ok = true
	for i, e := range arr {
		s, isStr := e.(string)
		if !isStr {
			t.elemErrorf(k, i, "must be a string, got %s", describe(e))
			ok = false
		}
		list = append(list, s)
	}
	return list, ok
}

// sub returns the table at k. ok is false when k is absent or (reported)
// not a table.
func (t *table) sub(k string) (*table, bool) {
	v, present := t.get(k)
	if !present {
		return nil, false
	}
	m, ok := v.(map[string]any)
	if !ok {
		t.errorf(k, "must be a table ([%s] or %s = { ... }), got %s",
			toml.Key(append(slices.Clip(t.absRel()), k)).String(), t.rel1(k), describe(v))
		return nil, false
	}
	return t.p.table(t.tunnel, append(slices.Clip(t.base), k), append(slices.Clip(t.rel), k), m), true
}

// absRel is the table's path as a header would spell it.
func (t *table) absRel() []string {
	if t.tunnel == nil {
		return t.rel
	}
	return append([]string{"tunnel"}, t.rel...)
}

// finish reports every key of the table that no getter asked for.
func (t *table) finish() {
	var unknown []string
	for k := range t.m {
		if !t.used[k] {
			unknown = append(unknown, k)
		}
	}
	slices.SortFunc(unknown, func(a, b string) int {
		if la, lb := t.line(a), t.line(b); la != lb {
			return la - lb
		}
		return strings.Compare(a, b)
	})
	for _, k := range unknown {
		t.errorf(k, "unknown key%s", t.suggest(k))
	}
}

// suggest returns " (did you mean x?)" for the known key nearest to k, or
// the list of known keys when none is near.
func (t *table) suggest(k string) string {
	// Near means at most one edit in three characters, and at least one.
	best, bestDist := "", max(1, len(k)/3)+1
	for _, c := range t.known {
		if d := editDistance(k, c); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	if t.tunnel == nil && len(t.rel) == 0 {
		return " (the top level holds state-file, [[tunnel]] tables and the [control] and [metrics] tables)"
	}
	if len(t.known) == 0 {
		return ""
	}
	return " (expected one of: " + strings.Join(t.known, ", ") + ")"
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names the TOML type of v for messages, with the value when it
// is short and a scalar.
func describe(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("the boolean %v", v)
	case []any, []map[string]any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date or time"
	}
	return fmt.Sprintf("a %T", v)
}
