// Package ikev2 implements the Internet Key Exchange Protocol Version 2
// (IKEv2, RFC 7296) for greipsec.
//
// The core is sans-I/O: a [Session] is the IKE state for one peer, in both
// roles, driven by (datagram, now) and answering with datagrams to send,
// timers and [Event]s ("Child SA installed", "deleted"). It opens no socket,
// starts no goroutine and reads no clock, so two sessions can negotiate in
// one test with a virtual clock and lost, duplicated or reordered messages.
// The runner that owns the sockets and installs Child SAs into the dataplane
// is in package gateway (ike.go, session.go). The cryptography (PRF, prf+, key schedule,
// key exchange groups, SK payload protection) is in package ikecrypto.
//
// Before a session sees a datagram, a [Gate] shared by the runner's
// sessions sorts it (gate.go): messages of IKE SAs we have go to a priority
// queue, IKE_SA_INIT requests to an init queue or, under load, get a
// stateless COOKIE answer, the rest is dropped and counted. Nothing
// unauthenticated changes an established IKE SA or our own attempt to set
// one up: half-open IKE SAs live in a table of their own until IKE_AUTH
// authenticates one (halfopen.go), and when both sides set up an IKE SA at
// once both complete and the same redundant one is deleted by both
// (crossing.go).
//
// The files follow RFC 7296:
//
//	session.go         the Session: configuration, state, Start/Receive/Tick/Output, counters
//	engine.go          the exchange engine: message IDs, retransmission (§2.1),
//	                   cached responses (§2.1), SK protection (§3.14), fragmentation
//	gate.go            the Gate: pre-authentication sorting, cookie and block thresholds
//	                   (§2.6, RFC 8019), INVALID_MAJOR_VERSION (§2.5)
//	halfopen.go        the table of half-open responder IKE SAs (§2.6)
//	ike_sa_init.go     IKE_SA_INIT (§1.2): SA, KE, Nonce, INVALID_KE_PAYLOAD, key schedule (§2.14)
//	cookie.go          COOKIE (§2.6), with a secret that changes every two minutes
//	natt.go            NAT detection, the move from port 500 to the NAT-T ports, IKE started on them,
//	                   following the peer (§2.23, RFC 3948)
//	ike_auth.go        IKE_AUTH (§1.2): IDs, AUTH (§2.15) verified before anything else, INITIAL_CONTACT
//	auth_pubkey.go     public-key AUTH (§2.15): RSA_SIG, RFC 4754 ECDSA, RFC 7427 Digital Signature
//	                   with SIGNATURE_HASH_ALGORITHMS (§4) and its AlgorithmIdentifiers, RFC 8420 Ed25519
//	cert.go            CERT and CERTREQ (§3.6, §3.7): our chain or raw key (RFC 7670, OpenIKED's),
//	                   the peer's chain verified to our CAs with CRLs and bounds, its ID in its certificate
//	crossing.go        more than one IKE SA with the peer: crossed setups, INITIAL_CONTACT,
//	                   reauthentication (§2.4)
//	child.go           the Child SA: proposals, selectors, transport mode (§1.3.1), KEYMAT split into encryption and integrity keys (§2.17)
//	install.go         a Child SA the runner could not install
//	informational.go   INFORMATIONAL (§1.4): liveness checks, DELETE
//	hint.go            INVALID_SPI and INVALID_IKE_SPI outside of an IKE SA (§1.5)
//	recovery.go        cutting back-offs short when traffic waits or the peer is heard
//	rekey.go           CREATE_CHILD_SA (§1.3): Child SA and IKE SA rekeying (§2.8, §2.18)
//	lifetime.go        hard lifetimes (§2.8)
//	wipe.go            clearing key material (see also ikecrypto/wipe.go)
//	proposal.go        proposal notation and matching (§2.7, §3.3.6); weak transforms only with ProposalOptions.AllowWeak (RFC 8247)
//	selector.go        traffic selectors and narrowing (§2.9)
//	fragment.go        IKEv2 fragmentation (RFC 7383)
//	config.go, events.go  the Session's configuration and output types
//	status.go          read-only snapshots for show, the control API and metrics
//	control.go         operator commands: Initiate, RekeyIKE, DeleteChild (swanctl's)
//	trace.go           Describe: one debug line per message, payload types only
//
// and the wire codecs:
//
//	constants.go       IANA registries used by IKEv2 (§3.1-§3.16, RFC 7383)
//	message.go         the IKE header (§3.1) and the generic payload chain (§3.2)
//	payload_sa.go      Security Association: proposals, transforms, attributes (§3.3)
//	payload_ke.go      Key Exchange (§3.4)
//	payload_id.go      Identification, IDi and IDr (§3.5)
//	payload_cert.go    Certificate and Certificate Request (§3.6, §3.7)
//	payload_auth.go    Authentication (§3.8)
//	payload_nonce.go   Nonce (§3.9)
//	payload_notify.go  Notify (§3.10)
//	payload_delete.go  Delete (§3.11)
//	payload_vendor.go  Vendor ID (§3.12)
//	payload_ts.go      Traffic Selectors, TSi and TSr (§3.13)
//	payload_sk.go      Encrypted (§3.14) and Encrypted Fragment (RFC 7383 §2.5)
//	payload_cp.go      Configuration (§3.15)
//	payload_eap.go     Extensible Authentication (§3.16)
//	exchange_rules.go  which payloads each exchange carries (§1.2-§1.5)
//
// # Decoding
//
// [ParseMessage] checks the IKE header, walks the payload chain and decodes
// every payload it knows with that payload's Decode method, which verifies
// the payload's lengths, counts and substructure markers against the RFC.
// Unknown payloads are skipped unless their critical bit is set (§2.5).
// The Encrypted payload stays encrypted: the caller decrypts its Data and
// parses the plaintext with [ParsePayloadChain].
//
// Errors from the wire are one of three types, so that the caller can pick
// the Notify it answers with:
//
//   - *[UnsupportedCriticalError]: UNSUPPORTED_CRITICAL_PAYLOAD;
//   - *[InvalidMajorVersionError]: INVALID_MAJOR_VERSION;
//   - *[SyntaxError]: INVALID_SYNTAX (or drop the message, §2.21).
//
// Decoded payloads own their bytes, except the Data of [EncryptedPayload]
// and [EncryptedFragmentPayload], which alias the parsed buffer so that it
// can be decrypted in place.
//
// # Encoding
//
// Each payload's Encode method appends the payload body (everything after
// the 4-byte generic payload header) to a byte slice. [Message.Encode] and
// [EncodePayloadChain] add the generic headers and chain the Next Payload
// fields. [Message.EncodeForSeal] lays out a message whose last payload is
// SK or SKF with room for the ciphertext, so that it can be encrypted in
// place. Encoding a value that cannot be represented on the wire (a payload
// longer than 65535 bytes, an address range mixing IPv4 and IPv6) is a
// programmer error and panics.
//
// Nothing in this package is safe for concurrent mutation; distinct values
// may be used from different goroutines.
package ikev2
