package config

import "path/filepath"

// stateFile reads the top-level state-file, where the sequence numbers of
// manual SAs are kept across restarts: a path, relative to the
// configuration file's directory unless absolute. Default: the
// configuration file's path with ".state" appended, beside it.
func (p *parser) stateFile(top *table) string {
	s, ok := top.str("state-file")
	if !ok {
		s = filepath.Base(p.file) + ".state"
	} else if s == "" {
		top.errorf("state-file", "is empty (expected the path of the file that keeps the sequence numbers of manual SAs)")
		return ""
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(filepath.Dir(p.file), s)
	}
	if abs, err := filepath.Abs(s); err == nil {
		s = abs
	}
	return s
}
