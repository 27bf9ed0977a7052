package netstack

import (
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

var testQuestion = dnsmessage.Question{Name: dnsmessage.MustNewName("www.example.com."), Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET}

// response builds a response to testQuestion with ID 1 and the given
// answers.
func response(t testing.TB, h dnsmessage.Header, answers ...func(*dnsmessage.Builder)) []byte {
	t.Helper()
	h.ID, h.Response = 1, true
	b := dnsmessage.NewBuilder(nil, h)
	b.StartQuestions()
	b.Question(testQuestion)
	b.StartAnswers()
	for _, a := range answers {
		a(&b)
	}
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func aRecord(name string, a string) func(*dnsmessage.Builder) {
	return func(b *dnsmessage.Builder) {
		b.AResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET},
			dnsmessage.AResource{A: netip.MustParseAddr(a).As4()})
	}
}

func cname(name, target string) func(*dnsmessage.Builder) {
	return func(b *dnsmessage.Builder) {
		b.CNAMEResource(dnsmessage.ResourceHeader{Name: dnsmessage.MustNewName(name), Class: dnsmessage.ClassINET},
			dnsmessage.CNAMEResource{CNAME: dnsmessage.MustNewName(target)})
	}
}

func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		name string
		msg  []byte
		want []string
		err  string
	}{
		{"plain", response(t, dnsmessage.Header{}, aRecord("www.example.com.", "192.0.2.1"), aRecord("WWW.Example.com.", "192.0.2.2")),
			[]string{"192.0.2.1", "192.0.2.2"}, ""},
		{"cname after its target", response(t, dnsmessage.Header{}, aRecord("web.example.net.", "192.0.2.3"), cname("www.example.com.", "web.example.net.")),
			[]string{"192.0.2.3"}, ""},
		{"records of other names are ignored", response(t, dnsmessage.Header{}, aRecord("evil.example.", "192.0.2.66"), aRecord("www.example.com.", "192.0.2.1")),
			[]string{"192.0.2.1"}, ""},
		{"cname loop", response(t, dnsmessage.Header{}, cname("www.example.com.", "a.example."), cname("a.example.", "www.example.com.")),
			nil, "no A records"},
		{"nxdomain", response(t, dnsmessage.Header{RCode: dnsmessage.RCodeNameError}), nil, "no such host"},
		{"servfail", response(t, dnsmessage.Header{RCode: dnsmessage.RCodeServerFailure}), nil, "server answered"},
		{"truncated", response(t, dnsmessage.Header{Truncated: true}), nil, errTruncated.Error()},
		{"garbage", []byte{1, 2, 3}, nil, "insufficient data"},
	} {
		got, err := parseResponse(tc.msg, 1, testQuestion)
		var gs []string
		for _, a := range got {
			gs = append(gs, a.String())
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %v, %v; want error %q", tc.name, gs, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(gs, tc.want) {
			t.Errorf("%s: got %v, %v; want %v", tc.name, gs, err, tc.want)
		}
	}

	// The ID and the question must match the query.
	msg := response(t, dnsmessage.Header{}, aRecord("www.example.com.", "192.0.2.1"))
	if _, err := parseResponse(msg, 2, testQuestion); err == nil {
		t.Error("accepted a response with another ID")
	}
	other := testQuestion
	other.Type = dnsmessage.TypeAAAA
	if _, err := parseResponse(msg, 1, other); err == nil {
		t.Error("accepted a response to another question")
	}
	var de *net.DNSError
	if _, err := parseResponse(response(t, dnsmessage.Header{RCode: dnsmessage.RCodeNameError}), 1, testQuestion); !errors.As(err, &de) || !de.IsNotFound {
		t.Errorf("NXDOMAIN gave %v, want a not-found *net.DNSError", err)
	}
}

// FuzzParseResponse feeds arbitrary bytes, as an answer from the far site
// would be, to the response parser: it must return addresses or an error,
// never panic, and only addresses when it reports no error.
func FuzzParseResponse(f *testing.F) {
	f.Add(response(f, dnsmessage.Header{}, aRecord("www.example.com.", "192.0.2.1")))
	f.Add(response(f, dnsmessage.Header{}, cname("www.example.com.", "a.example."), aRecord("a.example.", "192.0.2.1")))
	f.Add(response(f, dnsmessage.Header{RCode: dnsmessage.RCodeNameError}))
	f.Add(response(f, dnsmessage.Header{Truncated: true}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, msg []byte) {
		addrs, err := parseResponse(msg, 1, testQuestion)
		if err == nil && len(addrs) == 0 {
			t.Fatal("no error and no addresses")
		}
		for _, a := range addrs {
			if !a.Is4() {
				t.Fatalf("A query answered with %s", a)
			}
		}
		matches(msg, 1, testQuestion)
	})
}
