package agent

import "time"

// Field is a set of the telemetry fields one message carried. Every field
// of the payload is optional (CONTRACT §3), so a zero value must never be
// mistaken for a reading: rules look at Has before they look at a value.
type Field uint16

// The fields of a telemetry payload.
const (
	FieldVoltage     Field = 1 << iota // V
	FieldCurrent                       // A
	FieldPower                         // W
	FieldPowerFactor                   // 0..1
	FieldEnergy                        // kWh
	FieldLampOn                        // bool
	FieldDim                           // %, 0..100
	FieldLux                           // ambient light
	FieldTemperature                   // °C
	FieldBurnHours                     // hours
	FieldSwitchCount                   // count
	FieldPosition                      // lat and lon, both present and in range
	FieldAlarms                        // the alarms key was present (possibly empty)
	FieldTime                          // ts was present and sane, and At comes from it
)

// Reading is the set of measurements of one message. It is a value type
// with no pointers so that it can be copied into events and tickets freely.
type Reading struct {
	Fields      Field   `json:"fields"`
	Voltage     float64 `json:"voltage,omitempty"`
	Current     float64 `json:"current,omitempty"`
	Power       float64 `json:"power,omitempty"`
	PowerFactor float64 `json:"power_factor,omitempty"`
	Energy      float64 `json:"energy,omitempty"`
	LampOn      bool    `json:"lamp_on,omitempty"`
	Dim         float64 `json:"dim,omitempty"`
	Lux         float64 `json:"lux,omitempty"`
	Temperature float64 `json:"temperature,omitempty"`
	BurnHours   float64 `json:"burn_hours,omitempty"`
	SwitchCount float64 `json:"switch_count,omitempty"`
}

// Has reports whether every field of f was present.
func (r *Reading) Has(f Field) bool { return r.Fields&f == f }

// Telemetry is one decoded telemetry message of one controller.
type Telemetry struct {
	Nameplate string
	// At is when the controller measured: its ts when present and sane,
	// otherwise Received (CONTRACT §3, the absurd-time rule).
	At       time.Time
	Received time.Time
	Reading
	// Lat and Lon are meaningful only when Fields has FieldPosition.
	Lat, Lon float64
	// Alarms is the set of controller alarms active now. Meaningful only
	// when Fields has FieldAlarms; an absent key means "none active".
	Alarms []string
}

// StatusReport is a controller's online/offline report (its last will, or
// a JSON {"online": bool}) from the status topic.
type StatusReport struct {
	Nameplate string
	Online    bool
	Received  time.Time
}
