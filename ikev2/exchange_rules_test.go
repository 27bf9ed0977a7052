package ikev2

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestCheckPayloads(t *testing.T) {
	var (
		sa    = &SAPayload{}
		ke    = &KEPayload{}
		nonce = &NoncePayload{}
		idi   = &IDPayload{}
		idr   = &IDPayload{Responder: true}
		auth  = &AuthPayload{}
		eap   = &EAPPayload{}
		cert  = &CertPayload{}
		creq  = &CertReqPayload{}
		tsi   = &TSPayload{Selectors: []TrafficSelector{TSFromPrefix(netip.MustParsePrefix("192.0.2.1/32"), 47)}}
		tsr   = &TSPayload{Responder: true, Selectors: tsi.Selectors}
		cp    = &CPPayload{}
		del   = &DeletePayload{Protocol: ProtocolIKE}
		vid   = &VendorIDPayload{}
		sk    = &EncryptedPayload{}
		natS  = &NotifyPayload{NotifyType: NotifyNATDetectionSourceIP}
		natD  = &NotifyPayload{NotifyType: NotifyNATDetectionDestinationIP}
		cook  = &NotifyPayload{NotifyType: NotifyCookie}
		tm    = &NotifyPayload{NotifyType: NotifyUseTransportMode}
		rekey = &NotifyPayload{NotifyType: NotifyRekeySA}
		noPC  = &NotifyPayload{NotifyType: NotifyNoProposalChosen}
		invKE = &NotifyPayload{NotifyType: NotifyInvalidKEPayload}
		authF = &NotifyPayload{NotifyType: NotifyAuthenticationFailed}
		invS  = &NotifyPayload{NotifyType: NotifyInvalidIKESPI}
		tsU   = &NotifyPayload{NotifyType: NotifyTSUnacceptable}
	)
	const (
		saInit  = ExchangeIKESAInit
		ikeAuth = ExchangeIKEAuth
		child   = ExchangeCreateChildSA
		info    = ExchangeInformational
	)
	type p = []Payload
	tests := []struct {
		name      string
		exchange  ExchangeType
		response  bool
		encrypted bool
		payloads  []Payload
		want      string // "" for valid
	}{
		// IKE_SA_INIT, RFC 7296 §1.2 and §2.6.
		{"init request", saInit, false, false, p{sa, ke, nonce, natS, natD, vid}, ""},
		{"init request with cookie", saInit, false, false, p{cook, sa, ke, nonce}, ""},
		{"init request no KE", saInit, false, false, p{sa, nonce}, "IKE_SA_INIT request: missing KE payload"},
		{"init request no SA", saInit, false, false, p{ke, nonce}, "IKE_SA_INIT request: missing SA payload"},
		{"init request 2 nonces", saInit, false, false, p{sa, ke, nonce, nonce}, "IKE_SA_INIT request: 2 Nonce payloads, at most 1 allowed"},
		{"init request IDi", saInit, false, false, p{sa, ke, nonce, idi}, "IKE_SA_INIT request: unexpected IDi payload"},
		{"init request CERTREQ", saInit, false, false, p{sa, ke, nonce, creq}, "unexpected CERTREQ payload"},
		{"init request encrypted", saInit, false, true, p{sa, ke, nonce}, "IKE_SA_INIT request: payloads must not be encrypted"},
		{"init request SK", saInit, false, false, p{sk}, "IKE_SA_INIT request: unexpected SK payload"},
		{"init response", saInit, true, false, p{sa, ke, nonce, creq, natS, natD}, ""},
		{"init response no nonce", saInit, true, false, p{sa, ke, natS}, "IKE_SA_INIT response: missing Nonce payload"},
		{"init response cookie", saInit, true, false, p{cook}, ""},
		{"init response INVALID_KE", saInit, true, false, p{invKE}, ""},
		{"init response NO_PROPOSAL", saInit, true, false, p{noPC, vid}, ""},
		{"init response status only", saInit, true, false, p{natS}, "IKE_SA_INIT response: missing SA payload"},
		// IKE_AUTH, §1.2, §2.16 (EAP).
		{"auth request", ikeAuth, false, true, p{idi, cert, creq, idr, auth, cp, tm, sa, tsi, tsr, natS}, ""},
		{"auth request childless", ikeAuth, false, true, p{idi, auth}, ""},
		{"auth request EAP start", ikeAuth, false, true, p{idi, sa, tsi, tsr}, ""},
		{"auth request EAP round", ikeAuth, false, true, p{eap}, ""},
		{"auth request final AUTH", ikeAuth, false, true, p{auth}, ""},
		{"auth request nothing", ikeAuth, false, true, p{tm}, "IKE_AUTH request: needs one of the IDi, AUTH, EAP payloads"},
		{"auth request unencrypted", ikeAuth, false, false, p{idi, auth, sa, tsi, tsr}, "IKE_AUTH request: payloads not encrypted"},
		{"auth request SA without TS", ikeAuth, false, true, p{idi, auth, sa}, "IKE_AUTH request: the SA, TSi, TSr payloads go together, TSi, TSr missing"},
		{"auth request TSr only", ikeAuth, false, true, p{idi, auth, sa, tsi}, "TSr missing"},
		{"auth request two IDi", ikeAuth, false, true, p{idi, idi, auth}, "2 IDi payloads, at most 1 allowed"},
		{"auth request KE", ikeAuth, false, true, p{idi, auth, ke}, "unexpected KE payload"},
		{"auth response", ikeAuth, true, true, p{idr, cert, auth, sa, tsi, tsr, tm}, ""},
		{"auth response child failed", ikeAuth, true, true, p{idr, auth, tsU}, ""},
		{"auth response EAP", ikeAuth, true, true, p{idr, cert, auth, eap}, ""},
		{"auth response ID only", ikeAuth, true, true, p{idr}, "IKE_AUTH response: needs one of the AUTH, EAP payloads"},
		{"auth response IDi", ikeAuth, true, true, p{idi, auth}, "IKE_AUTH response: unexpected IDi payload"},
		{"auth response AUTHENTICATION_FAILED", ikeAuth, true, true, p{authF}, ""},
		{"auth response error unprotected", ikeAuth, true, false, p{authF}, ""},
		// CREATE_CHILD_SA, §1.3.
		{"child request", child, false, true, p{tm, sa, nonce, ke, tsi, tsr}, ""},
		{"child rekey", child, false, true, p{rekey, sa, nonce, tsi, tsr}, ""},
		{"IKE rekey", child, false, true, p{sa, nonce, ke}, ""},
		{"child request no nonce", child, false, true, p{sa, ke, tsi, tsr}, "CREATE_CHILD_SA request: missing Nonce payload"},
		{"child request TSi only", child, false, true, p{sa, nonce, tsi}, "the TSi, TSr payloads go together, TSr missing"},
		{"child request AUTH", child, false, true, p{sa, nonce, auth}, "unexpected AUTH payload"},
		{"child request plain", child, false, false, p{sa, nonce}, "CREATE_CHILD_SA request: payloads not encrypted"},
		{"child response", child, true, true, p{sa, nonce, ke, tsi, tsr}, ""},
		{"child response NO_PROPOSAL", child, true, true, p{noPC}, ""},
		{"child response cookie", child, true, true, p{cook}, "CREATE_CHILD_SA response: missing SA payload"},
		{"child response two SA", child, true, true, p{sa, sa, nonce}, "2 SA payloads, at most 1 allowed"},
		// INFORMATIONAL, §1.4 and §1.5.
		{"liveness", info, false, true, nil, ""},
		{"liveness response", info, true, true, p{}, ""},
		{"delete", info, false, true, p{del, del}, ""},
		{"delete response", info, true, true, p{del}, ""},
		{"info CP and N", info, false, true, p{cp, natS, natD}, ""},
		{"info SA", info, false, true, p{sa}, "INFORMATIONAL request: unexpected SA payload"},
		{"info plain", info, false, false, p{del}, "INFORMATIONAL request: payloads not encrypted"},
		{"info INVALID_IKE_SPI unprotected", info, true, false, p{invS}, ""},
		// Unknown exchange.
		{"unknown", 40, false, true, nil, "no payload rules for exchange EXCHANGE(40)"},
	}
	for _, tt := range tests {
		err := CheckPayloads(tt.exchange, tt.response, tt.encrypted, tt.payloads)
		if tt.want == "" {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var se *SyntaxError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want *SyntaxError containing %q", tt.name, err, tt.want)
		}
	}
}
