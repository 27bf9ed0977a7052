package gateway

import (
	"github.com/greipsec/greipsec/esp"
	"github.com/greipsec/greipsec/gateway/config"
	"github.com/greipsec/greipsec/ikev2"
)

// espConfigs returns the inbound and outbound SA configurations of a
// negotiated Child SA, without lifetimes.
func espConfigs(ev ikev2.ChildSAUp) (in, out esp.Config, err error) {
	t, err := config.ESPTransform(ev.Encr, ev.KeyBits, ev.Integ)
	if err != nil {
		return in, out, err
	}
	in = esp.Config{SPI: ev.InSPI, Algorithm: t.Algorithm, Integrity: t.Integrity, Key: ev.InKey, AuthKey: ev.InAuthKey, ESN: ev.ESN}
	out = esp.Config{SPI: ev.OutSPI, Algorithm: t.Algorithm, Integrity: t.Integrity, Key: ev.OutKey, AuthKey: ev.OutAuthKey, ESN: ev.ESN}
	return in, out, nil
}
