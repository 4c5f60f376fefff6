package agentctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// restCall does one request to the agent's REST API and decodes the JSON
// answer into out.
func (c *cli) restCall(ctx context.Context, method, path string, query url.Values, out any) error {
	body, err := c.restRaw(ctx, method, path, query)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// restRaw does one request and returns the body of a 2xx answer; any other
// answer is an error carrying the agent's message.
func (c *cli) restRaw(ctx context.Context, method, path string, query url.Values) ([]byte, error) {
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(c.host, strconv.Itoa(c.httpPort)), Path: path}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	ctx, cancel := c.reqCtx(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("agent REST API at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error  string `json:"error"`
			LError string `json:"Error"`
		}
		if json.Unmarshal(body, &e) == nil && (e.Error != "" || e.LError != "") {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error+e.LError)
		}
		var msg string
		if json.Unmarshal(body, &msg) == nil && msg != "" {
			return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, msg)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return body, nil
}

func joinOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
