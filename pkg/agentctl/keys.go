package agentctl

import (
	"fmt"
	"strings"

	"github.com/vppmesh/vppmesh/models"
)

const allAgentsPrefix = "/vnf-agent/"

// fullKey turns a user's key into an etcd key. A key starting with '/' is
// taken as it is. A relative key is under the agent's root; a model key may
// leave out "config/" (vpp/v2/interfaces/x), as Ligato's model paths read.
func fullKey(label, key string) string {
	if strings.HasPrefix(key, "/") {
		return key
	}
	root := models.AgentRoot(label)
	if !strings.HasPrefix(key, models.ConfigDir) && !strings.HasPrefix(key, models.StatusDir) {
		if _, err := models.ModelForKey(models.ConfigDir + key); err == nil {
			return root + models.ConfigDir + key
		}
	}
	return root + key
}

// relKey returns the agent-relative part of a full key under some agent's
// root, and whether it was under one.
func relKey(full string) (string, bool) {
	if !strings.HasPrefix(full, allAgentsPrefix) {
		return "", false
	}
	rest := full[len(allAgentsPrefix):]
	i := strings.IndexByte(rest, '/')
	if i <= 0 {
		return "", false
	}
	return rest[i+1:], true
}

// validate parses a value for a full key with the model registry.
func validate(full string, value []byte) ([]byte, error) {
	rel, ok := relKey(full)
	if !ok {
		return nil, fmt.Errorf("%s: not under %s<label>/, cannot validate it", full, allAgentsPrefix)
	}
	if !strings.HasPrefix(rel, models.ConfigDir) {
		return nil, fmt.Errorf("%s: not a config key (%s<label>/%s...), cannot validate it", full, allAgentsPrefix, models.ConfigDir)
	}
	v, err := models.Unmarshal(rel, value)
	if err != nil {
		return nil, err
	}
	b, err := models.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", full, err)
	}
	return b, nil
}
