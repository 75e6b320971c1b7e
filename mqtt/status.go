package mqtt

import (
	"bytes"
	"encoding/json"
)

// DecodeStatus decodes a status payload: "online" or "offline" (any case,
// surrounding whitespace ignored: what a controller's last will carries),
// or a JSON object {"online": true|false} (other keys ignored). Anything
// else is a *RejectError with ReasonBadStatus. Status messages are rare
// (connects and disconnects), so this uses encoding/json.
func DecodeStatus(payload []byte) (online bool, err error) {
	s := bytes.TrimSpace(payload)
	switch {
	case bytes.EqualFold(s, []byte("online")):
		return true, nil
	case bytes.EqualFold(s, []byte("offline")):
		return false, nil
	case len(s) > 0 && s[0] == '{':
		var m map[string]json.RawMessage
		if err := json.Unmarshal(s, &m); err != nil {
			return false, reject(ReasonBadStatus, "status object is not valid JSON")
		}
		raw, ok := m["online"]
		if !ok {
			return false, reject(ReasonBadStatus, `status object has no "online" key`)
		}
		switch string(raw) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return false, reject(ReasonBadStatus, `"online" must be true or false`)
	}
	return false, reject(ReasonBadStatus, "want online, offline or {\"online\": bool}, got "+quoteTrunc(string(s)))
}
