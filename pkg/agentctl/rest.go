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
	u := url.URL{Scheme: c.restAuth.scheme(), Host: net.JoinHostPort(c.host, strconv.Itoa(c.httpPort)), Path: path}
	if len(query) > 0 {
		u.RawQuery = query.Encode()
	}
	ctx, cancel := c.reqCtx(ctx)
	defer cancel()
	var body io.Reader
	if method == http.MethodPost {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if body != nil {
		// The agent refuses state-changing calls without it (cross-site
		// protection).
		req.Header.Set("Content-Type", "application/json")
	}
	if err := c.restAuth.apply(req); err != nil {
		return err
	}
	hc, err := c.restAuth.httpClient()
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent REST API at %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(answer, &e) == nil && e.Error != "" {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

func joinOrDash(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
