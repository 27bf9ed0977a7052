package netstack

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS limits. A stub resolver asks recursive servers on the far site: one
// question per query, A or AAAA, recursion desired.
const (
	// dnsAttemptTimeout is how long one query to one server may take.
	dnsAttemptTimeout = 3 * time.Second
	// dnsRounds is how many times the list of servers is tried.
	dnsRounds = 2
	// dnsUDPSize is the UDP payload size advertised with EDNS(0) (RFC 6891
	// §6.2.5), the value DNS Flag Day 2020 settled on to avoid fragments.
	dnsUDPSize = 1232
	// dnsMaxCNAMEs bounds the CNAME chain followed within one answer.
	dnsMaxCNAMEs = 8
	// dnsMaxStrays bounds the datagrams with a wrong ID or question that
	// one UDP query reads and ignores before it gives up on the server.
	dnsMaxStrays = 16
)

// ErrNoDNS is returned for a host name when the Stack has no DNS servers.
var ErrNoDNS = errors.New("netstack: no DNS servers configured, so only IP addresses can be used")

// resolver is the Stack's stub resolver: it asks the configured servers,
// through the stack, in turn. Unlike the net package's, it reads no local
// configuration (hosts file, search domains): names are the far site's.
type resolver struct {
	stack   *Stack
	servers []netip.AddrPort
}

// LookupNetIP returns the addresses of host, asking the DNS servers of
// Config through the stack. Network is "ip", "ip4" or "ip6"; "ip" asks for
// the families the stack has addresses of, IPv6 first. An IP address is
// returned as it is, without a query. A name that does not exist is a
// *net.DNSError with IsNotFound set; without DNS servers any name fails with
// an error that wraps ErrNoDNS.
func (s *Stack) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	var want4, want6 bool
	switch network {
	case "ip":
		want4, want6 = s.has4, s.has6
	case "ip4":
		want4 = true
	case "ip6":
		want6 = true
	default:
		return nil, net.UnknownNetworkError(network)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if (ip.Is4() && !want4 && network != "ip") || (ip.Is6() && !want6 && network != "ip") {
			return nil, &net.AddrError{Err: "address of the wrong family for " + network, Addr: host}
		}
		return []netip.Addr{ip}, nil
	}
	if len(s.dns.servers) == 0 {
		return nil, &net.DNSError{Err: ErrNoDNS.Error(), Name: host, UnwrapErr: ErrNoDNS}
	}
	return s.dns.lookup(ctx, host, want4, want6)
}

// LookupHost is LookupNetIP for "ip", with the addresses as strings.
func (s *Stack) LookupHost(ctx context.Context, host string) ([]string, error) {
	ips, err := s.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.String()
	}
	return out, nil
}

// lookup asks for the A and (or) AAAA records of host at the same time.
func (r *resolver) lookup(ctx context.Context, host string, want4, want6 bool) ([]netip.Addr, error) {
	name, err := dnsmessage.NewName(fqdn(host))
	if err != nil || len(host) == 0 {
		return nil, &net.DNSError{Err: "invalid domain name", Name: host, IsNotFound: true}
	}
	type result struct {
		addrs []netip.Addr
		err   error
	}
	var types []dnsmessage.Type
	if want6 {
		types = append(types, dnsmessage.TypeAAAA)
	}
	if want4 {
		types = append(types, dnsmessage.TypeA)
	}
	results := make([]chan result, len(types))
	for i, t := range types {
		results[i] = make(chan result, 1)
		go func() {
			addrs, err := r.query(ctx, name, t)
			results[i] <- result{addrs, err}
		}()
	}
	var addrs []netip.Addr
	var firstErr error
	for _, ch := range results {
		res := <-ch
		addrs = append(addrs, res.addrs...)
		if res.err != nil && firstErr == nil {
			firstErr = res.err
		}
	}
	if len(addrs) > 0 {
		return addrs, nil
	}
	if firstErr == nil {
		firstErr = &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	if de, ok := firstErr.(*net.DNSError); ok {
		de.Name = host
	}
	return nil, firstErr
}

// query asks the servers in turn for records of type t of name, until one
// gives an answer or says the name does not exist.
func (r *resolver) query(ctx context.Context, name dnsmessage.Name, t dnsmessage.Type) ([]netip.Addr, error) {
	var lastErr error
	for range dnsRounds {
		for _, server := range r.servers {
			addrs, err := r.exchange(ctx, server, name, t)
			if err == nil {
				return addrs, nil
			}
			var de *net.DNSError
			if errors.As(err, &de) && de.IsNotFound {
				return nil, err
			}
			lastErr = err
			if ctx.Err() != nil {
				return nil, &net.DNSError{Err: ctx.Err().Error(), Server: server.String(),
					IsTimeout: errors.Is(ctx.Err(), context.DeadlineExceeded)}
			}
		}
	}
	return nil, lastErr
}

// exchange asks one server over UDP, and again over TCP if the answer was
// truncated (RFC 7766 §5).
func (r *resolver) exchange(ctx context.Context, server netip.AddrPort, name dnsmessage.Name, t dnsmessage.Type) ([]netip.Addr, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsAttemptTimeout)
	defer cancel()
	var idb [2]byte
	if _, err := rand.Read(idb[:]); err != nil {
		return nil, err
	}
	id := binary.BigEndian.Uint16(idb[:])
	q := dnsmessage.Question{Name: name, Type: t, Class: dnsmessage.ClassINET}
	msg, err := buildQuery(id, q)
	if err != nil {
		return nil, &net.DNSError{Err: err.Error(), Name: name.String()}
	}
	serverErr := func(err error) error {
		return &net.DNSError{Err: err.Error(), Server: server.String(), IsTimeout: isTimeout(err), IsTemporary: true}
	}

	resp, err := r.exchangeUDP(ctx, server, id, q, msg)
	if err != nil {
		return nil, serverErr(err)
	}
	addrs, err := parseResponse(resp, id, q)
	if errors.Is(err, errTruncated) {
		if resp, err = r.exchangeTCP(ctx, server, msg); err != nil {
			return nil, serverErr(err)
		}
		addrs, err = parseResponse(resp, id, q)
	}
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) {
			de.Server = server.String()
			return nil, de
		}
		return nil, serverErr(err)
	}
	return addrs, nil
}

// exchangeUDP sends msg and returns the first response that has the query's
// ID and question; a connected socket takes datagrams from server only.
func (r *resolver) exchangeUDP(ctx context.Context, server netip.AddrPort, id uint16, q dnsmessage.Question, msg []byte) ([]byte, error) {
	c, err := r.stack.dial(ctx, "udp", server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, dnsUDPSize)
	for range dnsMaxStrays {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		if matches(buf[:n], id, q) {
			return buf[:n], nil
		}
	}
	return nil, errors.New("netstack: DNS server sent only unrelated responses")
}

// exchangeTCP sends msg with its 2-byte length (RFC 1035 §4.2.2) and reads
// one response.
func (r *resolver) exchangeTCP(ctx context.Context, server netip.AddrPort, msg []byte) ([]byte, error) {
	c, err := r.stack.dial(ctx, "tcp", server)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if d, ok := ctx.Deadline(); ok {
		c.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	framed := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(msg)), uint16(len(msg)))
	if _, err := c.Write(append(framed, msg...)); err != nil {
		return nil, err
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	resp := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// buildQuery builds a recursive query for q with an EDNS(0) OPT record.
func buildQuery(id uint16, q dnsmessage.Question) ([]byte, error) {
	b := dnsmessage.NewBuilder(make([]byte, 0, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAdditionals(); err != nil {
		return nil, err
	}
	var opt dnsmessage.ResourceHeader
	if err := opt.SetEDNS0(dnsUDPSize, dnsmessage.RCodeSuccess, false); err != nil {
		return nil, err
	}
	if err := b.OPTResource(opt, dnsmessage.OPTResource{}); err != nil {
		return nil, err
	}
	return b.Finish()
}

// matches reports whether msg is a response with the given ID and question.
func matches(msg []byte, id uint16, q dnsmessage.Question) bool {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil || !h.Response || h.ID != id {
		return false
	}
	got, err := p.Question()
	return err == nil && sameQuestion(got, q)
}

func sameQuestion(a, b dnsmessage.Question) bool {
	return a.Type == b.Type && a.Class == b.Class && strings.EqualFold(a.Name.String(), b.Name.String())
}

var errTruncated = errors.New("netstack: DNS response truncated")

// parseResponse returns the addresses that answer q in msg, following the
// CNAME chain from q's name, or an error: errTruncated when the TC bit is
// set, a *net.DNSError with IsNotFound for NXDOMAIN, or another error for a
// malformed or failed response. It checks the ID and question again, so it
// can be given any bytes.
func parseResponse(msg []byte, id uint16, q dnsmessage.Question) ([]netip.Addr, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return nil, err
	}
	if !h.Response || h.ID != id {
		return nil, errors.New("netstack: not the response to the query")
	}
	if h.Truncated {
		return nil, errTruncated
	}
	questions, err := p.AllQuestions()
	if err != nil {
		return nil, err
	}
	if len(questions) != 1 || !sameQuestion(questions[0], q) {
		return nil, errors.New("netstack: DNS response is for another question")
	}
	switch h.RCode {
	case dnsmessage.RCodeSuccess:
	case dnsmessage.RCodeNameError:
		return nil, &net.DNSError{Err: "no such host", IsNotFound: true}
	default:
		return nil, &net.DNSError{Err: "server answered " + h.RCode.String(), IsTemporary: h.RCode == dnsmessage.RCodeServerFailure}
	}

	// Collect the records first: a server may list the CNAME after the
	// addresses it points to.
	type record struct {
		name  string
		cname string
		addr  netip.Addr
	}
	var records []record
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err != nil {
			return nil, err
		}
		rec := record{name: strings.ToLower(rh.Name.String())}
		switch {
		case rh.Class != dnsmessage.ClassINET:
			err = p.SkipAnswer()
		case rh.Type == dnsmessage.TypeA && q.Type == dnsmessage.TypeA:
			var a dnsmessage.AResource
			if a, err = p.AResource(); err == nil {
				rec.addr = netip.AddrFrom4(a.A)
			}
		case rh.Type == dnsmessage.TypeAAAA && q.Type == dnsmessage.TypeAAAA:
			var a dnsmessage.AAAAResource
			if a, err = p.AAAAResource(); err == nil {
				rec.addr = netip.AddrFrom16(a.AAAA).Unmap()
			}
		case rh.Type == dnsmessage.TypeCNAME:
			var c dnsmessage.CNAMEResource
			if c, err = p.CNAMEResource(); err == nil {
				rec.cname = strings.ToLower(c.CNAME.String())
			}
		default:
			err = p.SkipAnswer()
		}
		if err != nil {
			return nil, err
		}
		if rec.addr.IsValid() || rec.cname != "" {
			records = append(records, rec)
		}
	}

	target := strings.ToLower(q.Name.String())
	var addrs []netip.Addr
	for range dnsMaxCNAMEs {
		next := ""
		for _, rec := range records {
			if rec.name != target {
				continue
			}
			if rec.addr.IsValid() {
				addrs = append(addrs, rec.addr)
			} else if next == "" {
				next = rec.cname
			}
		}
		if len(addrs) > 0 || next == "" {
			break
		}
		target = next
	}
	if len(addrs) == 0 {
		// NODATA: the name exists, without records of this type.
		kind := "A"
		if q.Type == dnsmessage.TypeAAAA {
			kind = "AAAA"
		}
		return nil, &net.DNSError{Err: "no " + kind + " records", IsNotFound: true}
	}
	return addrs, nil
}

// fqdn returns name with a trailing dot.
func fqdn(name string) string {
	if strings.HasSuffix(name, ".") {
		return name
	}
	return name + "."
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
