package agent

import "time"

// DeviceAttributes is the latest known state of one device, as synced to the
// cloud's device attributes (CONTRACT §7). It is coalesced: one record per
// device, however many messages arrived since the last flush.
type DeviceAttributes struct {
	Nameplate string `json:"nameplate_num"`
	// Reading holds the latest value of each measurement ever reported
	// (Fields says which); values persist across messages that omit them.
	Reading      Reading   `json:"reading"`
	Online       bool      `json:"online"`
	LastSeen     time.Time `json:"last_seen"`
	ActiveFaults []string  `json:"active_faults"`
}
