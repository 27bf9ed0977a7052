package ikev2

import "github.com/greipsec/greipsec/ikev2/ikecrypto"

// Key material is cleared as soon as it is no longer needed (best effort;
// see ikecrypto/wipe.go for what Go cannot clear):
//
//   - g^ir and SKEYSEED right after the key schedule (ike_sa_init.go,
//     rekey.go), our DH private value once the shared secret is computed;
//   - SK_pi and SK_pr once IKE_AUTH is done (crossing.go, established);
//   - SK_d, the SK cipher keys and any DH value of a rekey in progress
//     when the IKE SA dies (forget, session.go), and the PSK on Close;
//   - KEYMAT: the ChildSAUp event carries the only copy, which the runner
//     clears once installed; a Child SA the runner never heard of (the
//     redundant one of a crossing) clears its own when it dies.

// wipe clears the keys of a dead IKE SA and of its Child SAs. sa cannot
// protect or open messages afterwards.
func (sa *ikeSA) wipe() {
	clear(sa.skd)
	clear(sa.skpi)
	clear(sa.skpr)
	sa.skd, sa.skpi, sa.skpr = nil, nil, nil
	ikecrypto.WipeSKCipher(sa.out)
	ikecrypto.WipeSKCipher(sa.in)
	sa.out, sa.in = nil, nil
	ikecrypto.WipeDH(sa.dh)
	sa.dh = nil
	if r := sa.childRekey; r != nil {
		ikecrypto.WipeDH(r.dh)
		sa.childRekey = nil
	}
	if r := sa.ikeRekey; r != nil {
		ikecrypto.WipeDH(r.dh)
		sa.ikeRekey = nil
	}
	sa.reasmReq.Reset()
	sa.reasmResp.Reset()
	sa.lastResp, sa.req, sa.queue = nil, nil, nil
	sa.initReq, sa.initResp = nil, nil
	if c := sa.child; c != nil {
		c.wipe()
	}
	for _, c := range sa.extra {
		c.wipe()
	}
}

// wipe clears the keys of a Child SA the runner was never told about.
func (c *childSA) wipe() {
	if up := c.pending; up != nil {
		up.wipe()
		c.pending = nil
	}
}

// wipe clears the keys of a ChildSAUp that was not emitted.
func (up *ChildSAUp) wipe() {
	clear(up.InKey)
	clear(up.OutKey)
	clear(up.InAuthKey)
	clear(up.OutAuthKey)
}
