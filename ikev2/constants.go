package ikev2

import (
	"strconv"
	"strings"
)

// The numbers in this file are from RFC 7296 §3 and the IANA "Internet Key
// Exchange Version 2 (IKEv2) Parameters" registry, with RFC 7383 for SKF
// and IKEV2_FRAGMENTATION_SUPPORTED and RFC 7427 for
// SIGNATURE_HASH_ALGORITHMS.

// ExchangeType is the Exchange Type field of the IKE header (RFC 7296 §3.1).
type ExchangeType uint8

// Exchange types (RFC 7296 §3.1).
const (
	ExchangeIKESAInit     ExchangeType = 34 // IKE_SA_INIT
	ExchangeIKEAuth       ExchangeType = 35 // IKE_AUTH
	ExchangeCreateChildSA ExchangeType = 36 // CREATE_CHILD_SA
	ExchangeInformational ExchangeType = 37 // INFORMATIONAL
)

var exchangeNames = map[ExchangeType]string{
	ExchangeIKESAInit:     "IKE_SA_INIT",
	ExchangeIKEAuth:       "IKE_AUTH",
	ExchangeCreateChildSA: "CREATE_CHILD_SA",
	ExchangeInformational: "INFORMATIONAL",
}

// String returns the RFC name of t, e.g. "IKE_SA_INIT", or "EXCHANGE(n)".
func (t ExchangeType) String() string { return name(exchangeNames, t, "EXCHANGE") }

// Flags is the Flags field of the IKE header (RFC 7296 §3.1).
type Flags uint8

// Header flags (RFC 7296 §3.1). The other bits are sent as zero and ignored
// on receipt.
const (
	FlagInitiator Flags = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   Flags = 0x10 // V: the sender can speak a higher major version
	FlagResponse  Flags = 0x20 // R: this message is a response
)

// flagsMask keeps the defined flags; X bits are ignored on receipt.
const flagsMask = FlagInitiator | FlagVersion | FlagResponse

// String returns the set flags as letters joined by "|", e.g. "I|R", or
// "none".
func (f Flags) String() string {
	var s []string
	if f&FlagInitiator != 0 {
		s = append(s, "I")
	}
	if f&FlagVersion != 0 {
		s = append(s, "V")
	}
	if f&FlagResponse != 0 {
		s = append(s, "R")
	}
	if rest := f &^ flagsMask; rest != 0 {
		s = append(s, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, "|")
}

// PayloadType identifies a payload in the Next Payload fields of the IKE
// header and the generic payload header (RFC 7296 §3.2).
type PayloadType uint8

// Payload types (RFC 7296 §3.2, RFC 7383 §2.5).
const (
	PayloadNone     PayloadType = 0  // No Next Payload
	PayloadSA       PayloadType = 33 // Security Association
	PayloadKE       PayloadType = 34 // Key Exchange
	PayloadIDi      PayloadType = 35 // Identification - Initiator
	PayloadIDr      PayloadType = 36 // Identification - Responder
	PayloadCERT     PayloadType = 37 // Certificate
	PayloadCERTREQ  PayloadType = 38 // Certificate Request
	PayloadAUTH     PayloadType = 39 // Authentication
	PayloadNonce    PayloadType = 40 // Nonce (Ni, Nr)
	PayloadNotify   PayloadType = 41 // Notify (N)
	PayloadDelete   PayloadType = 42 // Delete (D)
	PayloadVendorID PayloadType = 43 // Vendor ID (V)
	PayloadTSi      PayloadType = 44 // Traffic Selector - Initiator
	PayloadTSr      PayloadType = 45 // Traffic Selector - Responder
	PayloadSK       PayloadType = 46 // Encrypted and Authenticated
	PayloadCP       PayloadType = 47 // Configuration
	PayloadEAP      PayloadType = 48 // Extensible Authentication
	PayloadSKF      PayloadType = 53 // Encrypted and Authenticated Fragment (RFC 7383)
)

var payloadNames = map[PayloadType]string{
	PayloadNone:     "NONE",
	PayloadSA:       "SA",
	PayloadKE:       "KE",
	PayloadIDi:      "IDi",
	PayloadIDr:      "IDr",
	PayloadCERT:     "CERT",
	PayloadCERTREQ:  "CERTREQ",
	PayloadAUTH:     "AUTH",
	PayloadNonce:    "Nonce",
	PayloadNotify:   "Notify",
	PayloadDelete:   "Delete",
	PayloadVendorID: "VendorID",
	PayloadTSi:      "TSi",
	PayloadTSr:      "TSr",
	PayloadSK:       "SK",
	PayloadCP:       "CP",
	PayloadEAP:      "EAP",
	PayloadSKF:      "SKF",
}

// String returns the short name of t, e.g. "SA", "Nonce", or "PAYLOAD(n)".
func (t PayloadType) String() string { return name(payloadNames, t, "PAYLOAD") }

// ProtocolID is the Protocol ID of a proposal, Notify or Delete payload
// (RFC 7296 §3.3.1).
type ProtocolID uint8

// Protocol IDs (RFC 7296 §3.3.1).
const (
	ProtocolNone ProtocolID = 0 // no SPI (Notify payloads about the IKE SA)
	ProtocolIKE  ProtocolID = 1
	ProtocolAH   ProtocolID = 2
	ProtocolESP  ProtocolID = 3
)

var protocolNames = map[ProtocolID]string{
	ProtocolNone: "NONE",
	ProtocolIKE:  "IKE",
	ProtocolAH:   "AH",
	ProtocolESP:  "ESP",
}

// String returns "IKE", "AH", "ESP", "NONE" or "PROTOCOL(n)".
func (p ProtocolID) String() string { return name(protocolNames, p, "PROTOCOL") }

// TransformType is the Transform Type of a transform substructure
// (RFC 7296 §3.3.2).
type TransformType uint8

// Transform types (RFC 7296 §3.3.2).
const (
	TransformENCR  TransformType = 1 // Encryption Algorithm
	TransformPRF   TransformType = 2 // Pseudorandom Function
	TransformINTEG TransformType = 3 // Integrity Algorithm
	TransformDH    TransformType = 4 // Diffie-Hellman Group (Key Exchange Method)
	TransformESN   TransformType = 5 // Extended Sequence Numbers
)

var transformTypeNames = map[TransformType]string{
	TransformENCR:  "ENCR",
	TransformPRF:   "PRF",
	TransformINTEG: "INTEG",
	TransformDH:    "DH",
	TransformESN:   "ESN",
}

// String returns "ENCR", "PRF", "INTEG", "DH", "ESN" or "TRANSFORM_TYPE(n)".
func (t TransformType) String() string { return name(transformTypeNames, t, "TRANSFORM_TYPE") }

// TransformID is the Transform ID of a transform substructure; its meaning
// depends on the transform type (RFC 7296 §3.3.2). It is also the group
// number of a KE payload (§3.4), which takes its values from the Transform
// Type 4 registry.
type TransformID uint16

// Transform IDs for TransformENCR (RFC 7296 §3.3.2, RFC 5282, RFC 7634).
const (
	EncrNull             TransformID = 11 // ENCR_NULL (RFC 2410); ESP only, with an integrity algorithm
	EncrAESCBC           TransformID = 12 // ENCR_AES_CBC; needs a Key Length attribute
	EncrAESGCM16         TransformID = 20 // ENCR_AES_GCM_16 (16-octet ICV); needs a Key Length attribute
	EncrChaCha20Poly1305 TransformID = 28 // ENCR_CHACHA20_POLY1305; no Key Length attribute
)

// Transform IDs for TransformPRF (RFC 7296 §3.3.2, RFC 4868).
const (
	PRFHMACSHA1     TransformID = 2 // PRF_HMAC_SHA1 (RFC 2104); weak, opt-in
	PRFHMACSHA2_256 TransformID = 5 // PRF_HMAC_SHA2_256
	PRFHMACSHA2_384 TransformID = 6 // PRF_HMAC_SHA2_384
	PRFHMACSHA2_512 TransformID = 7 // PRF_HMAC_SHA2_512
)

// Transform IDs for TransformINTEG (RFC 7296 §3.3.2, RFC 4868).
const (
	IntegNone             TransformID = 0  // NONE
	IntegHMACSHA1_96      TransformID = 2  // AUTH_HMAC_SHA1_96 (RFC 2404); weak, opt-in
	IntegHMACSHA2_256_128 TransformID = 12 // AUTH_HMAC_SHA2_256_128
	IntegHMACSHA2_384_192 TransformID = 13 // AUTH_HMAC_SHA2_384_192
	IntegHMACSHA2_512_256 TransformID = 14 // AUTH_HMAC_SHA2_512_256
)

// Transform IDs for TransformDH, also the group numbers of KE payloads
// (RFC 7296 §3.3.2, RFC 3526, RFC 5903, RFC 8031).
const (
	DHNone       TransformID = 0  // NONE
	DHModP1024   TransformID = 2  // 1024-bit MODP Group (RFC 2409); weak, opt-in
	DHModP1536   TransformID = 5  // 1536-bit MODP Group; weak, opt-in
	DHModP2048   TransformID = 14 // 2048-bit MODP Group
	DHModP3072   TransformID = 15 // 3072-bit MODP Group
	DHModP4096   TransformID = 16 // 4096-bit MODP Group
	DHModP6144   TransformID = 17 // 6144-bit MODP Group
	DHModP8192   TransformID = 18 // 8192-bit MODP Group
	DHECP256     TransformID = 19 // 256-bit random ECP group
	DHECP384     TransformID = 20 // 384-bit random ECP group
	DHECP521     TransformID = 21 // 521-bit random ECP group
	DHCurve25519 TransformID = 31 // Curve25519
)

// Transform IDs for TransformESN (RFC 7296 §3.3.2).
const (
	ESNNone     TransformID = 0 // No Extended Sequence Numbers
	ESNExtended TransformID = 1 // Extended Sequence Numbers
)

var transformIDNames = map[TransformType]map[TransformID]string{
	TransformENCR: {
		EncrNull:             "ENCR_NULL",
		EncrAESCBC:           "ENCR_AES_CBC",
		EncrAESGCM16:         "ENCR_AES_GCM_16",
		EncrChaCha20Poly1305: "ENCR_CHACHA20_POLY1305",
	},
	TransformPRF: {
		PRFHMACSHA1:     "PRF_HMAC_SHA1",
		PRFHMACSHA2_256: "PRF_HMAC_SHA2_256",
		PRFHMACSHA2_384: "PRF_HMAC_SHA2_384",
		PRFHMACSHA2_512: "PRF_HMAC_SHA2_512",
	},
	TransformINTEG: {
		IntegNone:             "NONE",
		IntegHMACSHA1_96:      "AUTH_HMAC_SHA1_96",
		IntegHMACSHA2_256_128: "AUTH_HMAC_SHA2_256_128",
		IntegHMACSHA2_384_192: "AUTH_HMAC_SHA2_384_192",
		IntegHMACSHA2_512_256: "AUTH_HMAC_SHA2_512_256",
	},
	TransformDH: {
		DHNone:       "NONE",
		DHModP1024:   "MODP_1024",
		DHModP1536:   "MODP_1536",
		DHModP2048:   "MODP_2048",
		DHModP3072:   "MODP_3072",
		DHModP4096:   "MODP_4096",
		DHModP6144:   "MODP_6144",
		DHModP8192:   "MODP_8192",
		DHECP256:     "ECP_256",
		DHECP384:     "ECP_384",
		DHECP521:     "ECP_521",
		DHCurve25519: "CURVE25519",
	},
	TransformESN: {
		ESNNone:     "NO_ESN",
		ESNExtended: "ESN",
	},
}

// Name returns the RFC name of id as a transform of type t, e.g.
// "ENCR_AES_CBC" or "ECP_384"; unknown IDs print as "ENCR(n)".
func (id TransformID) Name(t TransformType) string {
	if s, ok := transformIDNames[t][id]; ok {
		return s
	}
	return t.String() + "(" + strconv.FormatUint(uint64(id), 10) + ")"
}

// AttributeType is the type of a transform attribute (RFC 7296 §3.3.5).
type AttributeType uint16

// AttributeKeyLength is the Key Length transform attribute, in bits,
// always in TV format (RFC 7296 §3.3.5).
const AttributeKeyLength AttributeType = 14

// IDType is the ID Type of an Identification payload (RFC 7296 §3.5).
type IDType uint8

// Identification types (RFC 7296 §3.5).
const (
	IDIPv4Addr   IDType = 1  // ID_IPV4_ADDR: four octets
	IDFQDN       IDType = 2  // ID_FQDN: a domain name, no terminator
	IDRFC822Addr IDType = 3  // ID_RFC822_ADDR: an e-mail address (USER_FQDN)
	IDIPv6Addr   IDType = 5  // ID_IPV6_ADDR: sixteen octets
	IDDERASN1DN  IDType = 9  // ID_DER_ASN1_DN: a DER X.500 Distinguished Name
	IDDERASN1GN  IDType = 10 // ID_DER_ASN1_GN: a DER X.509 GeneralName
	IDKeyID      IDType = 11 // ID_KEY_ID: opaque octets
)

var idTypeNames = map[IDType]string{
	IDIPv4Addr:   "ID_IPV4_ADDR",
	IDFQDN:       "ID_FQDN",
	IDRFC822Addr: "ID_RFC822_ADDR",
	IDIPv6Addr:   "ID_IPV6_ADDR",
	IDDERASN1DN:  "ID_DER_ASN1_DN",
	IDDERASN1GN:  "ID_DER_ASN1_GN",
	IDKeyID:      "ID_KEY_ID",
}

// String returns the RFC name of t, e.g. "ID_FQDN", or "ID_TYPE(n)".
func (t IDType) String() string { return name(idTypeNames, t, "ID_TYPE") }

// AuthMethod is the Auth Method of an Authentication payload (RFC 7296 §3.8).
type AuthMethod uint8

// Authentication methods (RFC 7296 §3.8, RFC 4754 §7, RFC 7427).
const (
	AuthRSASig           AuthMethod = 1  // RSA Digital Signature (PKCS#1 v1.5, SHA-1)
	AuthSharedKeyMIC     AuthMethod = 2  // Shared Key Message Integrity Code (PSK)
	AuthECDSASHA256P256  AuthMethod = 9  // ECDSA with SHA-256 on the P-256 curve (RFC 4754)
	AuthECDSASHA384P384  AuthMethod = 10 // ECDSA with SHA-384 on the P-384 curve (RFC 4754)
	AuthECDSASHA512P521  AuthMethod = 11 // ECDSA with SHA-512 on the P-521 curve (RFC 4754)
	AuthDigitalSignature AuthMethod = 14 // Digital Signature (RFC 7427)
)

var authMethodNames = map[AuthMethod]string{
	AuthRSASig:           "RSA_SIG",
	AuthSharedKeyMIC:     "SHARED_KEY_MIC",
	AuthECDSASHA256P256:  "ECDSA_SHA256_P256",
	AuthECDSASHA384P384:  "ECDSA_SHA384_P384",
	AuthECDSASHA512P521:  "ECDSA_SHA512_P521",
	AuthDigitalSignature: "DIGITAL_SIGNATURE",
}

// String returns the RFC name of m, e.g. "SHARED_KEY_MIC", or "AUTH_METHOD(n)".
func (m AuthMethod) String() string { return name(authMethodNames, m, "AUTH_METHOD") }

// CertEncoding is the Cert Encoding of a CERT or CERTREQ payload
// (RFC 7296 §3.6).
type CertEncoding uint8

// Certificate encodings (RFC 7296 §3.6, RFC 7670), and the private-use
// one OpenIKED sends its raw ECDSA keys with.
const (
	CertX509Signature CertEncoding = 4   // X.509 Certificate - Signature
	CertRawRSAKey     CertEncoding = 11  // Raw RSA Key: a DER RSAPublicKey (PKCS#1)
	CertRawPublicKey  CertEncoding = 15  // Raw Public Key: a DER SubjectPublicKeyInfo (RFC 7670)
	CertIKEDECDSA     CertEncoding = 201 // private use: OpenIKED's raw ECDSA key, a DER SubjectPublicKeyInfo
)

var certEncodingNames = map[CertEncoding]string{
	CertX509Signature: "X509_CERT_SIGNATURE",
	CertRawRSAKey:     "RAW_RSA_KEY",
	CertRawPublicKey:  "RAW_PUBLIC_KEY",
	CertIKEDECDSA:     "IKED_ECDSA_KEY",
}

// HashAlgorithm is an entry of the IKEv2 Hash Algorithms registry, which
// the SIGNATURE_HASH_ALGORITHMS notify lists (RFC 7427 §4, RFC 8420 §2).
type HashAlgorithm uint16

// Hash algorithms (RFC 7427 §7, RFC 8420 §2).
const (
	HashSHA1     HashAlgorithm = 1
	HashSHA256   HashAlgorithm = 2
	HashSHA384   HashAlgorithm = 3
	HashSHA512   HashAlgorithm = 4
	HashIdentity HashAlgorithm = 5 // no hash: the signature algorithm takes the whole message (Ed25519)
)

var hashAlgorithmNames = map[HashAlgorithm]string{
	HashSHA1:     "SHA1",
	HashSHA256:   "SHA2_256",
	HashSHA384:   "SHA2_384",
	HashSHA512:   "SHA2_512",
	HashIdentity: "IDENTITY",
}

// String returns the registry's name of h, or "HASH(n)".
func (h HashAlgorithm) String() string { return name(hashAlgorithmNames, h, "HASH") }

// String returns the RFC name of e, or "CERT_ENCODING(n)".
func (e CertEncoding) String() string { return name(certEncodingNames, e, "CERT_ENCODING") }

// NotifyType is the Notify Message Type of a Notify payload (RFC 7296 §3.10.1).
// Types below 16384 report errors; the others carry status.
type NotifyType uint16

// Error notify types (RFC 7296 §3.10.1).
const (
	NotifyUnsupportedCriticalPayload NotifyType = 1
	NotifyInvalidIKESPI              NotifyType = 4
	NotifyInvalidMajorVersion        NotifyType = 5
	NotifyInvalidSyntax              NotifyType = 7
	NotifyInvalidMessageID           NotifyType = 9
	NotifyInvalidSPI                 NotifyType = 11
	NotifyNoProposalChosen           NotifyType = 14
	NotifyInvalidKEPayload           NotifyType = 17
	NotifyAuthenticationFailed       NotifyType = 24
	NotifySinglePairRequired         NotifyType = 34
	NotifyNoAdditionalSAs            NotifyType = 35
	NotifyInternalAddressFailure     NotifyType = 36
	NotifyFailedCPRequired           NotifyType = 37
	NotifyTSUnacceptable             NotifyType = 38
	NotifyInvalidSelectors           NotifyType = 39
	NotifyTemporaryFailure           NotifyType = 43
	NotifyChildSANotFound            NotifyType = 44
)

// Status notify types (RFC 7296 §3.10.1, RFC 4555, RFC 7383, RFC 7427).
const (
	NotifyInitialContact              NotifyType = 16384
	NotifySetWindowSize               NotifyType = 16385
	NotifyAdditionalTSPossible        NotifyType = 16386
	NotifyIPCompSupported             NotifyType = 16387
	NotifyNATDetectionSourceIP        NotifyType = 16388
	NotifyNATDetectionDestinationIP   NotifyType = 16389
	NotifyCookie                      NotifyType = 16390
	NotifyUseTransportMode            NotifyType = 16391
	NotifyHTTPCertLookupSupported     NotifyType = 16392
	NotifyRekeySA                     NotifyType = 16393
	NotifyESPTFCPaddingNotSupported   NotifyType = 16394
	NotifyNonFirstFragmentsAlso       NotifyType = 16395
	NotifyMOBIKESupported             NotifyType = 16396
	NotifyIKEv2FragmentationSupported NotifyType = 16430
	NotifySignatureHashAlgorithms     NotifyType = 16431
)

var notifyNames = map[NotifyType]string{
	NotifyUnsupportedCriticalPayload:  "UNSUPPORTED_CRITICAL_PAYLOAD",
	NotifyInvalidIKESPI:               "INVALID_IKE_SPI",
	NotifyInvalidMajorVersion:         "INVALID_MAJOR_VERSION",
	NotifyInvalidSyntax:               "INVALID_SYNTAX",
	NotifyInvalidMessageID:            "INVALID_MESSAGE_ID",
	NotifyInvalidSPI:                  "INVALID_SPI",
	NotifyNoProposalChosen:            "NO_PROPOSAL_CHOSEN",
	NotifyInvalidKEPayload:            "INVALID_KE_PAYLOAD",
	NotifyAuthenticationFailed:        "AUTHENTICATION_FAILED",
	NotifySinglePairRequired:          "SINGLE_PAIR_REQUIRED",
	NotifyNoAdditionalSAs:             "NO_ADDITIONAL_SAS",
	NotifyInternalAddressFailure:      "INTERNAL_ADDRESS_FAILURE",
	NotifyFailedCPRequired:            "FAILED_CP_REQUIRED",
	NotifyTSUnacceptable:              "TS_UNACCEPTABLE",
	NotifyInvalidSelectors:            "INVALID_SELECTORS",
	NotifyTemporaryFailure:            "TEMPORARY_FAILURE",
	NotifyChildSANotFound:             "CHILD_SA_NOT_FOUND",
	NotifyInitialContact:              "INITIAL_CONTACT",
	NotifySetWindowSize:               "SET_WINDOW_SIZE",
	NotifyAdditionalTSPossible:        "ADDITIONAL_TS_POSSIBLE",
	NotifyIPCompSupported:             "IPCOMP_SUPPORTED",
	NotifyNATDetectionSourceIP:        "NAT_DETECTION_SOURCE_IP",
	NotifyNATDetectionDestinationIP:   "NAT_DETECTION_DESTINATION_IP",
	NotifyCookie:                      "COOKIE",
	NotifyUseTransportMode:            "USE_TRANSPORT_MODE",
	NotifyHTTPCertLookupSupported:     "HTTP_CERT_LOOKUP_SUPPORTED",
	NotifyRekeySA:                     "REKEY_SA",
	NotifyESPTFCPaddingNotSupported:   "ESP_TFC_PADDING_NOT_SUPPORTED",
	NotifyNonFirstFragmentsAlso:       "NON_FIRST_FRAGMENTS_ALSO",
	NotifyMOBIKESupported:             "MOBIKE_SUPPORTED",
	NotifyIKEv2FragmentationSupported: "IKEV2_FRAGMENTATION_SUPPORTED",
	NotifySignatureHashAlgorithms:     "SIGNATURE_HASH_ALGORITHMS",
}

// String returns the RFC name of t, e.g. "NO_PROPOSAL_CHOSEN", or
// "NOTIFY(n)".
func (t NotifyType) String() string { return name(notifyNames, t, "NOTIFY") }

// IsError reports whether t is in the error range 0-16383 (RFC 7296 §3.10.1).
func (t NotifyType) IsError() bool { return t < 16384 }

// TSType is the TS Type of a traffic selector (RFC 7296 §3.13.1).
type TSType uint8

// Traffic selector types (RFC 7296 §3.13.1).
const (
	TSIPv4AddrRange TSType = 7 // TS_IPV4_ADDR_RANGE
	TSIPv6AddrRange TSType = 8 // TS_IPV6_ADDR_RANGE
)

var tsTypeNames = map[TSType]string{
	TSIPv4AddrRange: "TS_IPV4_ADDR_RANGE",
	TSIPv6AddrRange: "TS_IPV6_ADDR_RANGE",
}

// String returns the RFC name of t, or "TS_TYPE(n)".
func (t TSType) String() string { return name(tsTypeNames, t, "TS_TYPE") }

// CFGType is the CFG Type of a Configuration payload (RFC 7296 §3.15).
type CFGType uint8

// Configuration payload types (RFC 7296 §3.15).
const (
	CFGRequest CFGType = 1 // CFG_REQUEST
	CFGReply   CFGType = 2 // CFG_REPLY
	CFGSet     CFGType = 3 // CFG_SET
	CFGAck     CFGType = 4 // CFG_ACK
)

var cfgTypeNames = map[CFGType]string{
	CFGRequest: "CFG_REQUEST",
	CFGReply:   "CFG_REPLY",
	CFGSet:     "CFG_SET",
	CFGAck:     "CFG_ACK",
}

// String returns the RFC name of t, or "CFG_TYPE(n)".
func (t CFGType) String() string { return name(cfgTypeNames, t, "CFG_TYPE") }

// name looks v up in a String table, falling back to "PREFIX(n)".
func name[T ~uint8 | ~uint16](table map[T]string, v T, prefix string) string {
	if s, ok := table[v]; ok {
		return s
	}
	return prefix + "(" + strconv.FormatUint(uint64(v), 10) + ")"
}
