package ikev2

import "strings"

// The payloads each exchange carries, from the message diagrams of
// RFC 7296 §1.2 (IKE_SA_INIT, IKE_AUTH), §1.3 (CREATE_CHILD_SA), §1.4
// (INFORMATIONAL), §2.6 (COOKIE), §2.16 (EAP) and §3.15 (CP):
//
//	IKE_SA_INIT     HDR, SAi1, KEi, Ni, [N+], [V+]                  -->
//	                <-- HDR, SAr1, KEr, Nr, [CERTREQ+], [N+], [V+]
//	IKE_AUTH        HDR, SK {IDi, [CERT+], [CERTREQ+], [IDr], AUTH,
//	                    [CP], SAi2, TSi, TSr, [N+], [V+]}             -->
//	                <-- HDR, SK {IDr, [CERT+], AUTH, [CP], SAr2, TSi, TSr, [N+], [V+]}
//	CREATE_CHILD_SA HDR, SK {SA, Ni, [KEi], [TSi, TSr], [N+]}       -->
//	                <-- HDR, SK {SA, Nr, [KEr], [TSi, TSr], [N+]}
//	INFORMATIONAL   HDR, SK {[N+], [D+], [CP]}                      -->
//	                <-- HDR, SK {[N+], [D+], [CP]}
//
// With EAP an IKE_AUTH message may carry EAP instead of AUTH, and later
// rounds only EAP or AUTH; without a Child SA (or when it failed) SA, TSi
// and TSr are absent together. CP and V are accepted wherever strongSwan
// sends them.

// many is the largest count checked for payloads that may repeat.
const many = 0xff

// occurrence bounds how many payloads of one type a message may carry.
type occurrence struct{ min, max int }

// messageRule is what one exchange carries in one direction.
type messageRule struct {
	encrypted bool
	allowed   map[PayloadType]occurrence
	// anyOf: at least one of these payloads must be present (if non-empty).
	anyOf []PayloadType
	// together: these payloads appear all or none.
	together []PayloadType
}

type ruleKey struct {
	exchange ExchangeType
	response bool
}

var (
	once     = occurrence{1, 1}
	optional = occurrence{0, 1}
	repeated = occurrence{0, many}
)

var messageRules = map[ruleKey]*messageRule{
	{ExchangeIKESAInit, false}: {
		encrypted: false,
		allowed: map[PayloadType]occurrence{
			PayloadSA: once, PayloadKE: once, PayloadNonce: once,
			PayloadNotify: repeated, PayloadVendorID: repeated,
		},
	},
	{ExchangeIKESAInit, true}: {
		encrypted: false,
		allowed: map[PayloadType]occurrence{
			PayloadSA: once, PayloadKE: once, PayloadNonce: once,
			PayloadCERTREQ: repeated, PayloadNotify: repeated, PayloadVendorID: repeated,
		},
	},
	{ExchangeIKEAuth, false}: {
		encrypted: true,
		allowed: map[PayloadType]occurrence{
			PayloadIDi: optional, PayloadCERT: repeated, PayloadCERTREQ: repeated,
			PayloadIDr: optional, PayloadAUTH: optional, PayloadEAP: optional,
			PayloadCP: optional, PayloadSA: optional, PayloadTSi: optional, PayloadTSr: optional,
			PayloadNotify: repeated, PayloadVendorID: repeated,
		},
		anyOf:    []PayloadType{PayloadIDi, PayloadAUTH, PayloadEAP},
		together: []PayloadType{PayloadSA, PayloadTSi, PayloadTSr},
	},
	{ExchangeIKEAuth, true}: {
		encrypted: true,
		allowed: map[PayloadType]occurrence{
			PayloadIDr: optional, PayloadCERT: repeated, PayloadAUTH: optional, PayloadEAP: optional,
			PayloadCP: optional, PayloadSA: optional, PayloadTSi: optional, PayloadTSr: optional,
			PayloadNotify: repeated, PayloadVendorID: repeated,
		},
		anyOf:    []PayloadType{PayloadAUTH, PayloadEAP},
		together: []PayloadType{PayloadSA, PayloadTSi, PayloadTSr},
	},
	{ExchangeCreateChildSA, false}: {
		encrypted: true,
		allowed: map[PayloadType]occurrence{
			PayloadSA: once, PayloadNonce: once, PayloadKE: optional,
			PayloadTSi: optional, PayloadTSr: optional, PayloadCP: optional,
			PayloadNotify: repeated, PayloadVendorID: repeated,
		},
		together: []PayloadType{PayloadTSi, PayloadTSr},
	},
	{ExchangeCreateChildSA, true}: {
		encrypted: true,
		allowed: map[PayloadType]occurrence{
			PayloadSA: once, PayloadNonce: once, PayloadKE: optional,
			PayloadTSi: optional, PayloadTSr: optional, PayloadCP: optional,
			PayloadNotify: repeated, PayloadVendorID: repeated,
		},
		together: []PayloadType{PayloadTSi, PayloadTSr},
	},
	{ExchangeInformational, false}: {
		encrypted: true,
		allowed: map[PayloadType]occurrence{
			PayloadNotify: repeated, PayloadDelete: repeated, PayloadCP: optional, PayloadVendorID: repeated,
		},
	},
	{ExchangeInformational, true}: {
		encrypted: true,
		allowed: map[PayloadType]occurrence{
			PayloadNotify: repeated, PayloadDelete: repeated, PayloadCP: optional, PayloadVendorID: repeated,
		},
	},
}

// CheckPayloads reports whether payloads, the content of one message of
// the given exchange and direction, follow the basic rules of RFC 7296
// §1.2-§1.5: every mandatory payload present, none that the exchange does
// not carry, none repeated that may appear once. encrypted says whether
// payloads came out of an SK payload (pass the decrypted inner payloads
// then); IKE_SA_INIT must not be encrypted and the other exchanges must.
//
// A response that carries only Notify (and Vendor ID) payloads, at least
// one of them an error type, is always valid, encrypted or not: that is
// how errors are answered (§2.21) and how INVALID_IKE_SPI may travel
// unprotected (§1.5). So is an IKE_SA_INIT response with only COOKIE
// (§2.6). The error is a *[SyntaxError].
func CheckPayloads(exchange ExchangeType, response bool, encrypted bool, payloads []Payload) error {
	rule, ok := messageRules[ruleKey{exchange, response}]
	if !ok {
		return syntaxErrorf("no payload rules for exchange %v", exchange)
	}
	what := exchange.String() + " request"
	if response {
		what = exchange.String() + " response"
	}
	if response && notifyOnly(exchange, payloads) {
		return nil
	}
	if rule.encrypted && !encrypted {
		return syntaxErrorf("%s: payloads not encrypted", what)
	}
	if !rule.encrypted && encrypted {
		return syntaxErrorf("%s: payloads must not be encrypted", what)
	}

	var count [256]int
	for _, p := range payloads {
		count[p.Type()]++
	}
	for t, n := range count {
		if n == 0 {
			continue
		}
		typ := PayloadType(t)
		occ, ok := rule.allowed[typ]
		if !ok {
			return syntaxErrorf("%s: unexpected %v payload", what, typ)
		}
		if n > occ.max {
			return syntaxErrorf("%s: %d %v payloads, at most %d allowed", what, n, typ, occ.max)
		}
	}
	for t := range count {
		if occ, ok := rule.allowed[PayloadType(t)]; ok && count[t] < occ.min {
			return syntaxErrorf("%s: missing %v payload", what, PayloadType(t))
		}
	}
	if len(rule.anyOf) > 0 {
		found := false
		for _, t := range rule.anyOf {
			found = found || count[t] > 0
		}
		if !found {
			return syntaxErrorf("%s: needs one of the %s payloads", what, typeList(rule.anyOf))
		}
	}
	present, absent := 0, 0
	for _, t := range rule.together {
		if count[t] > 0 {
			present++
		} else {
			absent++
		}
	}
	if present > 0 && absent > 0 {
		var missing []PayloadType
		for _, t := range rule.together {
			if count[t] == 0 {
				missing = append(missing, t)
			}
		}
		return syntaxErrorf("%s: the %s payloads go together, %s missing", what, typeList(rule.together), typeList(missing))
	}
	return nil
}

// notifyOnly reports whether payloads are an error answer: only Notify and
// Vendor ID payloads, with an error notify, or a COOKIE in IKE_SA_INIT.
func notifyOnly(exchange ExchangeType, payloads []Payload) bool {
	answer := false
	for _, p := range payloads {
		switch p := p.(type) {
		case *NotifyPayload:
			if p.NotifyType.IsError() || (exchange == ExchangeIKESAInit && p.NotifyType == NotifyCookie) {
				answer = true
			}
		case *VendorIDPayload:
		default:
			return false
		}
	}
	return answer
}

func typeList(ts []PayloadType) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ", ")
}
