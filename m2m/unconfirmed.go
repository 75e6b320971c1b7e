package m2m

// This file holds every choice about the M2M API that its public
// documentation does not confirm (m2m-api.md tags them [ours] or
// [sister]). When the real contract becomes known, change it here: the rest
// of the package (transport, limits, classification, logging) and the agent
// do not depend on these shapes.

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/edge-agent/edge-agent/agent"
)

// Default paths and method (CONTRACT §2). The tickets path is documented;
// the two device paths and the attribute method are ours (the sister TALQ
// API patches one device and puts many).
const (
	DefaultTicketsPath      = "/vendors/m2m/clients/{idInstance}/tickets"                 // [doc]
	DefaultDevicesPath      = "/vendors/m2m/clients/{idInstance}/devices"                 // [ours]
	DefaultDevicePath       = "/vendors/m2m/clients/{idInstance}/devices/{nameplate_num}" // [ours]
	DefaultAttributesMethod = http.MethodPatch                                            // [ours]
	// DefaultAPIKeyHeader is the header an API key goes in: a third-party
	// guide to the sister API names "apikey" [unverified].
	DefaultAPIKeyHeader = "apikey"
	// DefaultOrigin is the cod_external_ticket_origin of the documented
	// example, the contract's default for EDGE_TICKET_ORIGIN.
	DefaultOrigin = "tg"
)

// cancelMethod is DELETE [doc]; that it goes to the tickets path with a
// JSON body is the sister API's way [sister].
const cancelMethod = http.MethodDelete

// MaxDevicesPerCall is the most devices one many-devices call carries
// (CONTRACT §7) [ours].
const MaxDevicesPerCall = 100

// fallbackStatus reports whether an answer to the many-devices call means
// "this API has no such call", so that the one-device call is used instead.
func fallbackStatus(status int) bool {
	return status == http.StatusNotFound || status == http.StatusMethodNotAllowed
}

// cancelBody is the sister API's cancel body [sister].
type cancelBody struct {
	Origin        string `json:"cod_external_ticket_origin"`
	Protocol      int64  `json:"id_external_protocol"`
	Justification string `json:"justification"`
}

func encodeCancel(origin string, protocol int64, justification string) ([]byte, error) {
	return marshal(cancelBody{Origin: origin, Protocol: protocol, Justification: justification})
}

// Attribute names (CONTRACT §7).
const (
	AttrLampOn       = "lamp_on"
	AttrDim          = "dim"
	AttrVoltage      = "voltage"
	AttrCurrent      = "current"
	AttrPower        = "power"
	AttrPowerFactor  = "power_factor"
	AttrEnergy       = "energy"
	AttrTemperature  = "temperature"
	AttrBurnHours    = "burn_hours"
	AttrSwitchCount  = "switch_count"
	AttrOnline       = "online"
	AttrLastSeen     = "last_seen"
	AttrActiveFaults = "active_faults"
)

// measurement maps a telemetry field to its attribute. Lux is not an
// attribute (CONTRACT §7 does not list it).
type measurement struct {
	field agent.Field
	name  string
	value func(*agent.Reading) float64
}

var measurements = []measurement{
	{agent.FieldDim, AttrDim, func(r *agent.Reading) float64 { return r.Dim }},
	{agent.FieldVoltage, AttrVoltage, func(r *agent.Reading) float64 { return r.Voltage }},
	{agent.FieldCurrent, AttrCurrent, func(r *agent.Reading) float64 { return r.Current }},
	{agent.FieldPower, AttrPower, func(r *agent.Reading) float64 { return r.Power }},
	{agent.FieldPowerFactor, AttrPowerFactor, func(r *agent.Reading) float64 { return r.PowerFactor }},
	{agent.FieldEnergy, AttrEnergy, func(r *agent.Reading) float64 { return r.Energy }},
	{agent.FieldTemperature, AttrTemperature, func(r *agent.Reading) float64 { return r.Temperature }},
	{agent.FieldBurnHours, AttrBurnHours, func(r *agent.Reading) float64 { return r.BurnHours }},
	{agent.FieldSwitchCount, AttrSwitchCount, func(r *agent.Reading) float64 { return r.SwitchCount }},
}

// attributes builds a device's attribute object: only the measurements the
// device ever reported (a zero is a reading only when its field was seen),
// plus online, last_seen (RFC 3339, null when never seen) and active_faults
// (always an array). A non-finite measurement cannot be written in JSON: it
// is an error for that device, never silently dropped.
func attributes(a *agent.DeviceAttributes) (map[string]any, error) {
	m := make(map[string]any, len(measurements)+4)
	r := &a.Reading
	if r.Has(agent.FieldLampOn) {
		m[AttrLampOn] = r.LampOn
	}
	for _, ms := range measurements {
		if !r.Has(ms.field) {
			continue
		}
		v := ms.value(r)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: device %q: %s is not a finite number", ErrInvalidInput, a.Nameplate, ms.name)
		}
		m[ms.name] = v
	}
	m[AttrOnline] = a.Online
	if a.LastSeen.IsZero() {
		m[AttrLastSeen] = nil
	} else {
		m[AttrLastSeen] = a.LastSeen.UTC().Format(time.RFC3339)
	}
	faults := a.ActiveFaults
	if faults == nil {
		faults = []string{}
	}
	m[AttrActiveFaults] = faults
	return m, nil
}

// deviceEntry is one device of the many-devices body [ours].
type deviceEntry struct {
	Nameplate  string         `json:"nameplate_num"`
	Attributes map[string]any `json:"attributes"`
}

// encodeDevices is the many-devices body:
// {"devices":[{"nameplate_num":..,"attributes":{..}}, ...]} [ours].
func encodeDevices(entries []deviceEntry) ([]byte, error) {
	return marshal(struct {
		Devices []deviceEntry `json:"devices"`
	}{entries})
}

// encodeDevice is the one-device body: {"attributes":{..}} [ours].
func encodeDevice(attrs map[string]any) ([]byte, error) {
	return marshal(struct {
		Attributes map[string]any `json:"attributes"`
	}{attrs})
}
