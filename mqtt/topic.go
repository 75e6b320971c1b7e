package mqtt

import "strings"

// TopicKind says which of a device's topics a message came on.
type TopicKind uint8

// Topic kinds.
const (
	TopicTelemetry TopicKind = iota + 1
	TopicStatus
)

func (k TopicKind) String() string {
	switch k {
	case TopicTelemetry:
		return "telemetry"
	case TopicStatus:
		return "status"
	}
	return "unknown"
}

// MaxNameplateLen is the longest nameplate accepted (CONTRACT §3).
const MaxNameplateLen = 64

// ParseTopic splits {prefix}/{nameplate}/telemetry or
// {prefix}/{nameplate}/status. The nameplate must be 1–64 characters of
// A-Z a-z 0-9 . _ -; anything else is a *RejectError with ReasonBadTopic.
// The nameplate returned shares the topic's memory: no allocation.
func ParseTopic(prefix, topic string) (nameplate string, kind TopicKind, err error) {
	rest, ok := strings.CutPrefix(topic, prefix)
	if !ok || len(rest) == 0 || rest[0] != '/' {
		return "", 0, reject(ReasonBadTopic, "topic outside the prefix "+quoteTrunc(prefix))
	}
	rest = rest[1:]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return "", 0, reject(ReasonBadTopic, "topic has no kind level")
	}
	nameplate, suffix := rest[:slash], rest[slash+1:]
	switch suffix {
	case "telemetry":
		kind = TopicTelemetry
	case "status":
		kind = TopicStatus
	default:
		return "", 0, reject(ReasonBadTopic, "topic kind is neither telemetry nor status")
	}
	if !validNameplate(nameplate) {
		return "", 0, reject(ReasonBadTopic, "bad nameplate "+quoteTrunc(nameplate)+" (1-64 of A-Z a-z 0-9 . _ -)")
	}
	return nameplate, kind, nil
}

func validNameplate(s string) bool {
	if len(s) == 0 || len(s) > MaxNameplateLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !nameChar(s[i]) {
			return false
		}
	}
	return true
}

// nameChar is the charset of nameplates and of alarm (fault) names.
func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}
