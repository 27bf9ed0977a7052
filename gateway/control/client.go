package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/greipsec/greipsec/gateway"
)

// A Client talks to the control socket of a running greipsec.
type Client struct {
	path string
	http *http.Client
}

// NewClient returns a client for the socket at path; it connects at each
// call.
func NewClient(path string, timeout time.Duration) *Client {
	return &Client{
		path: path,
		http: &http.Client{
			Timeout: timeout,
			Transport: &http.Transport{
				DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, "unix", path)
				},
			},
		},
	}
}

// Status returns the gateway's status.
func (c *Client) Status() (gateway.Status, error) {
	var st gateway.Status
	err := c.call(http.MethodGet, "/v1/status", &st)
	return st, err
}

// Tunnel returns one tunnel's status.
func (c *Client) Tunnel(name string) (gateway.TunnelStatus, error) {
	var st gateway.TunnelStatus
	err := c.call(http.MethodGet, "/v1/tunnels/"+url.PathEscape(name), &st)
	return st, err
}

// Initiate, Terminate and Rekey run the operator commands of a tunnel and
// return the daemon's line about what it does.
func (c *Client) Initiate(name string, target gateway.Target) (string, error) {
	return c.command(name, "initiate", target)
}

func (c *Client) Terminate(name string, target gateway.Target) (string, error) {
	return c.command(name, "terminate", target)
}

func (c *Client) Rekey(name string, target gateway.Target) (string, error) {
	return c.command(name, "rekey", target)
}

func (c *Client) command(name, verb string, target gateway.Target) (string, error) {
	var m Message
	err := c.call(http.MethodPost, "/v1/tunnels/"+url.PathEscape(name)+"/"+verb+"?sa="+target.String(), &m)
	return m.Message, err
}

// Reload asks the daemon to re-read its configuration file. The result is
// valid also with an error: a reload that failed in part.
func (c *Client) Reload() (gateway.ReloadResult, error) {
	var a ReloadAnswer
	err := c.call(http.MethodPost, "/v1/reload", &a)
	if err != nil {
		var ae *APIError
		if !errors.As(err, &ae) || ae.Code != http.StatusUnprocessableEntity {
			return a.Result, err
		}
	}
	if a.Error != "" {
		return a.Result, errors.New(a.Error)
	}
	return a.Result, nil
}

// Version returns the daemon's build.
func (c *Client) Version() (VersionAnswer, error) {
	var v VersionAnswer
	err := c.call(http.MethodGet, "/v1/version", &v)
	return v, err
}

// APIError is an error answer of the daemon.
type APIError struct {
	Code int
	Msg  string
}

func (e *APIError) Error() string { return e.Msg }

// call makes one request and decodes the JSON answer into v (also for an
// error status, whose "error" becomes an *APIError).
func (c *Client) call(method, path string, v any) error {
	req, err := http.NewRequest(method, "http://greipsec"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("control: cannot reach greipsec at %s: %w (is `greipsec up` running, with this control socket? --control PATH names another)", c.path, unwrapURL(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("control: reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorAnswer
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			err := &APIError{Code: resp.StatusCode, Msg: e.Error}
			if resp.StatusCode == http.StatusUnprocessableEntity {
				json.Unmarshal(body, v)
			}
			return err
		}
		if resp.StatusCode == http.StatusUnprocessableEntity && json.Unmarshal(body, v) == nil {
			return &APIError{Code: resp.StatusCode, Msg: resp.Status}
		}
		return &APIError{Code: resp.StatusCode, Msg: fmt.Sprintf("control: %s %s: %s", method, path, resp.Status)}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("control: %s %s: bad answer: %w", method, path, err)
	}
	return nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
