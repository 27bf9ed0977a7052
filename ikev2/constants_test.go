package ikev2

import "testing"

// The numbers below are copied from the RFC text, not from constants.go, so
// that a slip in either shows up here.
func TestRegistryValues(t *testing.T) {
	// RFC 7296 §3.1 (exchange types), §3.2 (payload types), RFC 7383 §2.5 (SKF).
	exchanges := []struct {
		v    ExchangeType
		num  uint8
		name string
	}{
		{ExchangeIKESAInit, 34, "IKE_SA_INIT"},
		{ExchangeIKEAuth, 35, "IKE_AUTH"},
		{ExchangeCreateChildSA, 36, "CREATE_CHILD_SA"},
		{ExchangeInformational, 37, "INFORMATIONAL"},
	}
	for _, e := range exchanges {
		if uint8(e.v) != e.num || e.v.String() != e.name {
			t.Errorf("exchange %d %q: got %d %q", e.num, e.name, uint8(e.v), e.v.String())
		}
	}
	payloads := []struct {
		v   PayloadType
		num uint8
	}{
		{PayloadSA, 33}, {PayloadKE, 34}, {PayloadIDi, 35}, {PayloadIDr, 36},
		{PayloadCERT, 37}, {PayloadCERTREQ, 38}, {PayloadAUTH, 39}, {PayloadNonce, 40},
		{PayloadNotify, 41}, {PayloadDelete, 42}, {PayloadVendorID, 43}, {PayloadTSi, 44},
		{PayloadTSr, 45}, {PayloadSK, 46}, {PayloadCP, 47}, {PayloadEAP, 48}, {PayloadSKF, 53},
	}
	for _, p := range payloads {
		if uint8(p.v) != p.num {
			t.Errorf("payload %v = %d, want %d", p.v, uint8(p.v), p.num)
		}
	}
	// RFC 7296 §3.1 flags.
	if FlagInitiator != 0x08 || FlagVersion != 0x10 || FlagResponse != 0x20 {
		t.Errorf("flags I=%#x V=%#x R=%#x", FlagInitiator, FlagVersion, FlagResponse)
	}
	// RFC 7296 §3.3.2 transform IDs, RFC 4868, RFC 5282, RFC 7634, RFC 8031.
	ids := []struct {
		t    TransformType
		v    TransformID
		num  uint16
		name string
	}{
		{TransformENCR, EncrAESCBC, 12, "ENCR_AES_CBC"},
		{TransformENCR, EncrAESGCM16, 20, "ENCR_AES_GCM_16"},
		{TransformENCR, EncrChaCha20Poly1305, 28, "ENCR_CHACHA20_POLY1305"},
		{TransformPRF, PRFHMACSHA2_256, 5, "PRF_HMAC_SHA2_256"},
		{TransformPRF, PRFHMACSHA2_384, 6, "PRF_HMAC_SHA2_384"},
		{TransformPRF, PRFHMACSHA2_512, 7, "PRF_HMAC_SHA2_512"},
		{TransformINTEG, IntegNone, 0, "NONE"},
		{TransformINTEG, IntegHMACSHA2_256_128, 12, "AUTH_HMAC_SHA2_256_128"},
		{TransformINTEG, IntegHMACSHA2_384_192, 13, "AUTH_HMAC_SHA2_384_192"},
		{TransformINTEG, IntegHMACSHA2_512_256, 14, "AUTH_HMAC_SHA2_512_256"},
		{TransformDH, DHModP2048, 14, "MODP_2048"},
		{TransformDH, DHECP256, 19, "ECP_256"},
		{TransformDH, DHECP384, 20, "ECP_384"},
		{TransformDH, DHECP521, 21, "ECP_521"},
		{TransformDH, DHCurve25519, 31, "CURVE25519"},
		{TransformESN, ESNNone, 0, "NO_ESN"},
		{TransformESN, ESNExtended, 1, "ESN"},
		{TransformENCR, 999, 999, "ENCR(999)"},
	}
	for _, id := range ids {
		if uint16(id.v) != id.num || id.v.Name(id.t) != id.name {
			t.Errorf("%v %d %q: got %d %q", id.t, id.num, id.name, uint16(id.v), id.v.Name(id.t))
		}
	}
	if AttributeKeyLength != 14 {
		t.Errorf("Key Length attribute = %d, want 14 (RFC 7296 §3.3.5)", AttributeKeyLength)
	}
	// RFC 7296 §3.5 ID types, §3.8 auth methods (RFC 7427 for 14), §3.13.1 TS types.
	if IDIPv4Addr != 1 || IDFQDN != 2 || IDRFC822Addr != 3 || IDIPv6Addr != 5 || IDKeyID != 11 {
		t.Error("ID type numbers differ from RFC 7296 §3.5")
	}
	if AuthRSASig != 1 || AuthSharedKeyMIC != 2 || AuthDigitalSignature != 14 {
		t.Error("auth method numbers differ from RFC 7296 §3.8 / RFC 7427")
	}
	if TSIPv4AddrRange != 7 || TSIPv6AddrRange != 8 {
		t.Error("TS type numbers differ from RFC 7296 §3.13.1")
	}
	if ProtocolIKE != 1 || ProtocolAH != 2 || ProtocolESP != 3 {
		t.Error("protocol IDs differ from RFC 7296 §3.3.1")
	}
}

// RFC 7296 §3.10.1, RFC 4555 (MOBIKE_SUPPORTED), RFC 7383
// (IKEV2_FRAGMENTATION_SUPPORTED), RFC 7427 (SIGNATURE_HASH_ALGORITHMS).
func TestNotifyTypes(t *testing.T) {
	tests := []struct {
		v    NotifyType
		num  uint16
		name string
	}{
		{NotifyUnsupportedCriticalPayload, 1, "UNSUPPORTED_CRITICAL_PAYLOAD"},
		{NotifyInvalidIKESPI, 4, "INVALID_IKE_SPI"},
		{NotifyInvalidMajorVersion, 5, "INVALID_MAJOR_VERSION"},
		{NotifyInvalidSyntax, 7, "INVALID_SYNTAX"},
		{NotifyInvalidMessageID, 9, "INVALID_MESSAGE_ID"},
		{NotifyInvalidSPI, 11, "INVALID_SPI"},
		{NotifyNoProposalChosen, 14, "NO_PROPOSAL_CHOSEN"},
		{NotifyInvalidKEPayload, 17, "INVALID_KE_PAYLOAD"},
		{NotifyAuthenticationFailed, 24, "AUTHENTICATION_FAILED"},
		{NotifySinglePairRequired, 34, "SINGLE_PAIR_REQUIRED"},
		{NotifyNoAdditionalSAs, 35, "NO_ADDITIONAL_SAS"},
		{NotifyInternalAddressFailure, 36, "INTERNAL_ADDRESS_FAILURE"},
		{NotifyFailedCPRequired, 37, "FAILED_CP_REQUIRED"},
		{NotifyTSUnacceptable, 38, "TS_UNACCEPTABLE"},
		{NotifyInvalidSelectors, 39, "INVALID_SELECTORS"},
		{NotifyTemporaryFailure, 43, "TEMPORARY_FAILURE"},
		{NotifyChildSANotFound, 44, "CHILD_SA_NOT_FOUND"},
		{NotifyInitialContact, 16384, "INITIAL_CONTACT"},
		{NotifySetWindowSize, 16385, "SET_WINDOW_SIZE"},
		{NotifyAdditionalTSPossible, 16386, "ADDITIONAL_TS_POSSIBLE"},
		{NotifyIPCompSupported, 16387, "IPCOMP_SUPPORTED"},
		{NotifyNATDetectionSourceIP, 16388, "NAT_DETECTION_SOURCE_IP"},
		{NotifyNATDetectionDestinationIP, 16389, "NAT_DETECTION_DESTINATION_IP"},
		{NotifyCookie, 16390, "COOKIE"},
		{NotifyUseTransportMode, 16391, "USE_TRANSPORT_MODE"},
		{NotifyHTTPCertLookupSupported, 16392, "HTTP_CERT_LOOKUP_SUPPORTED"},
		{NotifyRekeySA, 16393, "REKEY_SA"},
		{NotifyESPTFCPaddingNotSupported, 16394, "ESP_TFC_PADDING_NOT_SUPPORTED"},
		{NotifyNonFirstFragmentsAlso, 16395, "NON_FIRST_FRAGMENTS_ALSO"},
		{NotifyMOBIKESupported, 16396, "MOBIKE_SUPPORTED"},
		{NotifyIKEv2FragmentationSupported, 16430, "IKEV2_FRAGMENTATION_SUPPORTED"},
		{NotifySignatureHashAlgorithms, 16431, "SIGNATURE_HASH_ALGORITHMS"},
	}
	for _, tt := range tests {
		if uint16(tt.v) != tt.num || tt.v.String() != tt.name {
			t.Errorf("%s: got %d %q, want %d", tt.name, uint16(tt.v), tt.v.String(), tt.num)
		}
		if tt.v.IsError() != (tt.num < 16384) {
			t.Errorf("%s: IsError() = %v", tt.name, tt.v.IsError())
		}
	}
	if got := NotifyType(40000).String(); got != "NOTIFY(40000)" {
		t.Errorf("unknown notify String() = %q", got)
	}
}

func TestStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{ExchangeType(99).String(), "EXCHANGE(99)"},
		{PayloadType(99).String(), "PAYLOAD(99)"},
		{PayloadNonce.String(), "Nonce"},
		{(FlagInitiator | FlagResponse).String(), "I|R"},
		{Flags(0).String(), "none"},
		{Flags(0x41).String(), "0x41"},
		{ProtocolESP.String(), "ESP"},
		{TransformDH.String(), "DH"},
		{IDFQDN.String(), "ID_FQDN"},
		{AuthSharedKeyMIC.String(), "SHARED_KEY_MIC"},
		{CertX509Signature.String(), "X509_CERT_SIGNATURE"},
		{TSIPv6AddrRange.String(), "TS_IPV6_ADDR_RANGE"},
		{CFGReply.String(), "CFG_REPLY"},
		{CFGType(9).String(), "CFG_TYPE(9)"},
		{Transform{Type: TransformENCR, ID: EncrAESCBC, KeyLength: 256}.String(), "ENCR_AES_CBC_256"},
		{Proposal{Protocol: ProtocolESP, Transforms: []Transform{
			{Type: TransformENCR, ID: EncrAESGCM16, KeyLength: 256},
			{Type: TransformESN, ID: ESNNone},
		}}.String(), "ESP:ENCR_AES_GCM_16_256/NO_ESN"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
