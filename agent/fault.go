package agent

import "time"

// Fault names (CONTRACT §4), from the TALQ lighting data model. Any alarm a
// controller reports is also a fault, under the name it reports.
const (
	FaultLampFailure          = "lampFailure"
	FaultLampUnexpectedOn     = "lampUnexpectedOn"
	FaultSupplyVoltageTooHigh = "supplyVoltageTooHigh"
	FaultSupplyVoltageTooLow  = "supplyVoltageTooLow"
	FaultPowerFactorTooLow    = "powerFactorTooLow"
	FaultLampPowerTooHigh     = "lampPowerTooHigh"
	FaultCyclingFailure       = "cyclingFailure"
	FaultCommunicationFailure = "communicationFailure"
)

// EventKind says whether a fault began or ended.
type EventKind uint8

// Event kinds.
const (
	Raise EventKind = iota + 1
	Clear
)

func (k EventKind) String() string {
	switch k {
	case Raise:
		return "raise"
	case Clear:
		return "clear"
	}
	return "unknown"
}

// Event is a fault of one device confirmed (Raise) or confirmed gone (Clear)
// by the detector. The pipeline turns a Raise into a ticket and a Clear into
// a suppression or a cancel.
type Event struct {
	Kind      EventKind
	Nameplate string
	Fault     string
	// At is when the detector confirmed the change (the time of the reading
	// that completed the confirm or clear count).
	At time.Time
	// Since is when the first reading of the confirming run was taken: "the
	// lamp has been dark since ...". Equal to At for faults raised at once.
	Since time.Time
	// Reading is the latest reading that showed the change, for the ticket
	// description. Its Fields are zero for communicationFailure.
	Reading Reading
	// Lat and Lon are the device's position as the detector knows it
	// (registry, then the device's own reports), when HasPosition: the
	// ticket of a device missing from the registry still tells the crew
	// where to go.
	Lat, Lon    float64
	HasPosition bool
}

// ActiveFault is a fault known to be open, as restored from the store at
// start-up so that the detector neither raises it again nor forgets to
// clear it.
type ActiveFault struct {
	Nameplate string
	Fault     string
	Since     time.Time
}
