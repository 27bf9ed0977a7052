package ikev2

import (
	"fmt"
	"slices"
	"strings"
)

// This file reads proposals written the way OpenBSD's iked.conf(5) writes
// its "ikesa" and "childsa" clauses, "enc aes-256 auth hmac-sha2-256 prf
// hmac-sha2-256 group modp3072", so that a line copied from an iked host
// works unchanged. Such a proposal is recognised by its spaces (strongSwan's
// notation has none) and translated keyword by keyword into strongSwan's,
// which the parsers above then check as usual.

// ikedNames maps iked.conf's transform names, per keyword, to strongSwan's.
// The names are those of iked.conf(5) that this package implements;
// iked's "grpN" aliases of the groups are included.
var ikedNames = map[string]map[string]string{
	"enc": {
		"aes-128": "aes128", "aes-192": "aes192", "aes-256": "aes256",
		"aes-128-gcm": "aes128gcm16", "aes-256-gcm": "aes256gcm16",
		"chacha20-poly1305": "chacha20poly1305", "null": "null",
	},
	"auth": {
		"hmac-sha1": "sha1", "hmac-sha2-256": "sha256", "hmac-sha2-384": "sha384", "hmac-sha2-512": "sha512",
	},
	"prf": {
		"hmac-sha1": "prfsha1", "hmac-sha2-256": "prfsha256", "hmac-sha2-384": "prfsha384", "hmac-sha2-512": "prfsha512",
	},
	"group": {
		"modp1024": "modp1024", "grp2": "modp1024", "modp1536": "modp1536", "grp5": "modp1536",
		"modp2048": "modp2048", "grp14": "modp2048", "modp3072": "modp3072", "grp15": "modp3072",
		"modp4096": "modp4096", "grp16": "modp4096", "modp6144": "modp6144", "grp17": "modp6144",
		"modp8192": "modp8192", "grp18": "modp8192", "ecp256": "ecp256", "grp19": "ecp256",
		"ecp384": "ecp384", "grp20": "ecp384", "ecp521": "ecp521", "grp21": "ecp521",
		"curve25519": "curve25519", "grp31": "curve25519",
	},
}

// ikedKeywords lists the keywords of an iked proposal, for error texts.
const ikedKeywords = "enc, auth, prf, group, esn, noesn"

// isIkedProposal reports whether s is written in iked.conf's notation.
func isIkedProposal(s string) bool {
	return strings.ContainsAny(s, " \t") || s == "ikesa" || s == "childsa"
}

// ikedProposal translates one proposal in iked.conf's notation into
// strongSwan's: "enc aes-256 auth hmac-sha2-256 group modp3072" is
// "aes256-sha256-modp3072". clause is "ikesa" or "childsa", which may start
// the proposal as it starts the line in iked.conf. Unknown keywords and
// names are errors that list the valid ones; whether the algorithms fit
// together is left to the parser of strongSwan's notation.
func ikedProposal(what, clause, s string) (string, error) {
	fail := func(format string, args ...any) (string, error) {
		return "", fmt.Errorf("ikev2: %s proposal %q: %s", what, s, fmt.Sprintf(format, args...))
	}
	words := strings.Fields(s)
	if len(words) > 0 && (words[0] == "ikesa" || words[0] == "childsa") {
		if words[0] != clause {
			return fail("%s proposals are iked's %s clause, not %s", what, clause, words[0])
		}
		words = words[1:]
	}
	if len(words) == 0 {
		return fail("no transform (expected e.g. \"enc aes-256 auth hmac-sha2-256 group modp3072\")")
	}
	var toks []string
	for i := 0; i < len(words); i++ {
		kw := words[i]
		switch kw {
		case "esn", "noesn":
			toks = append(toks, kw)
			continue
		}
		names, ok := ikedNames[kw]
		if !ok {
			return fail("unknown keyword %q (expected one of %s)", kw, ikedKeywords)
		}
		if i+1 == len(words) {
			return fail("%s needs a name after it (one of %s)", kw, ikedNameList(kw))
		}
		i++
		tok, ok := names[words[i]]
		if !ok {
			return fail("%s %q is not an algorithm greipsec knows (expected one of %s)", kw, words[i], ikedNameList(kw))
		}
		toks = append(toks, tok)
	}
	return strings.Join(toks, "-"), nil
}

// ikedNameList returns the names of one keyword, sorted, for error texts.
func ikedNameList(kw string) string {
	var names []string
	for n := range ikedNames[kw] {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, " ")
}
