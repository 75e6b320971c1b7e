package m2mtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Default paths and method: the same as the client's (CONTRACT §2).
const (
	DefaultTicketsPath      = "/vendors/m2m/clients/{idInstance}/tickets"
	DefaultDevicesPath      = "/vendors/m2m/clients/{idInstance}/devices"
	DefaultDevicePath       = "/vendors/m2m/clients/{idInstance}/devices/{nameplate_num}"
	DefaultAttributesMethod = "PATCH"
	DefaultAPIKeyHeader     = "apikey"
	DefaultInstanceID       = "69" // the documentation's example
)

// MaxDevicesPerCall is the most devices a many-devices call may carry.
const MaxDevicesPerCall = 100

// kind is a JSON type a field must have.
type kind int

const (
	kString     kind = iota // a JSON string
	kInt                    // a JSON integer (no fraction, no exponent)
	kNullString             // a JSON string or null
	kFlag                   // the integer 0 or 1
)

func (k kind) String() string {
	switch k {
	case kString:
		return "a string"
	case kInt:
		return "an integer"
	case kNullString:
		return "a string or null"
	case kFlag:
		return "the integer 0 or 1"
	}
	return "?"
}

// createFields is every field of the documented create body [doc], in the
// documentation's order, with its JSON type. Every one must be present.
var createFields = []struct {
	name string
	kind kind
}{
	{"cod_external_ticket_origin", kString},
	{"ticket_origin_type_id", kInt},
	{"id_external_protocol", kInt},
	{"external_protocol", kString},
	{"service_code", kString},
	{"justification", kNullString},
	{"description", kString},
	{"id_worksite", kInt},
	{"state_abbreviation", kString},
	{"municipality", kString},
	{"neighborhood", kString},
	{"address", kString},
	{"address_number", kInt},
	{"zip_code", kNullString},
	{"latitude", kNullString},
	{"longitude", kNullString},
	{"reference_point", kString},
	{"reporter", kString},
	{"reporter_phone", kNullString},
	{"reporter_birth_date", kNullString},
	{"nameplate_num", kString},
	{"age_majority_checkbox", kFlag},
}

// cancelFields is the sister API's cancel body [sister], our choice.
var cancelFields = []struct {
	name string
	kind kind
}{
	{"cod_external_ticket_origin", kString},
	{"id_external_protocol", kInt},
	{"justification", kString},
}

// attrKinds are the device attributes (CONTRACT §7) and their JSON types
// [ours]. None is required: a device sends what it ever reported.
var attrKinds = map[string]string{
	"lamp_on": "bool", "online": "bool",
	"dim": "number", "voltage": "number", "current": "number", "power": "number",
	"power_factor": "number", "energy": "number", "temperature": "number",
	"burn_hours": "number", "switch_count": "number",
	"last_seen":     "time",
	"active_faults": "strings",
}

// badRequest is a body that is not the expected JSON at all (400), as
// opposed to a field problem (422).
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// readObject reads one JSON object, keeping its members' raw values and
// refusing duplicate keys and trailing data.
func readObject(body []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, &badRequest{"body is not JSON: " + err.Error()}
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, &badRequest{"body is not a JSON object"}
	}
	obj := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, &badRequest{"body is not JSON: " + err.Error()}
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, &badRequest{"body is not JSON: " + err.Error()}
		}
		if _, dup := obj[key]; dup {
			return nil, fmt.Errorf("duplicate field %q", key)
		}
		obj[key] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, &badRequest{"body is not JSON: " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &badRequest{"trailing data after the JSON object"}
	}
	return obj, nil
}

// jsonType names the JSON type of a raw value.
func jsonType(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	if bytes.ContainsAny(v, ".eE") {
		return "non-integer number"
	}
	return "integer"
}

func checkKind(name string, k kind, v json.RawMessage) error {
	t := jsonType(v)
	ok := false
	switch k {
	case kString:
		ok = t == "string"
	case kNullString:
		ok = t == "string" || t == "null"
	case kInt:
		if ok = t == "integer"; ok {
			if _, err := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64); err != nil {
				return fmt.Errorf("field %q: integer out of range", name)
			}
		}
	case kFlag:
		s := string(bytes.TrimSpace(v))
		ok = s == "0" || s == "1"
	}
	if !ok {
		return fmt.Errorf("field %q must be %s, got %s", name, k, t)
	}
	return nil
}

// createTicket is what the simulator keeps of a valid create.
type createTicket struct {
	protocol  int64
	nameplate string
	origin    string
}

// checkCreate validates a create body: JSON object (else 400), every
// documented field present with its type, no unknown field, a positive
// id_external_protocol and external_protocol its decimal text (else 422).
func checkCreate(body []byte) (createTicket, error) {
	obj, err := readObject(body)
	if err != nil {
		return createTicket{}, err
	}
	known := map[string]bool{}
	for _, f := range createFields {
		known[f.name] = true
		v, ok := obj[f.name]
		if !ok {
			return createTicket{}, fmt.Errorf("missing field %q", f.name)
		}
		if err := checkKind(f.name, f.kind, v); err != nil {
			return createTicket{}, err
		}
	}
	if err := unknownField(obj, known); err != nil {
		return createTicket{}, err
	}
	var t createTicket
	_ = json.Unmarshal(obj["id_external_protocol"], &t.protocol)
	var ext string
	_ = json.Unmarshal(obj["external_protocol"], &ext)
	_ = json.Unmarshal(obj["nameplate_num"], &t.nameplate)
	_ = json.Unmarshal(obj["cod_external_ticket_origin"], &t.origin)
	switch {
	case t.protocol < 1:
		return createTicket{}, fmt.Errorf("id_external_protocol %d must be positive", t.protocol)
	case ext != strconv.FormatInt(t.protocol, 10):
		return createTicket{}, fmt.Errorf("external_protocol %q is not id_external_protocol %d as text", ext, t.protocol)
	case strings.TrimSpace(t.nameplate) == "":
		return createTicket{}, errors.New("nameplate_num is empty")
	case strings.TrimSpace(t.origin) == "":
		return createTicket{}, errors.New("cod_external_ticket_origin is empty")
	}
	return t, nil
}

type cancelRequest struct {
	origin        string
	protocol      int64
	justification string
}

func checkCancel(body []byte) (cancelRequest, error) {
	obj, err := readObject(body)
	if err != nil {
		return cancelRequest{}, err
	}
	known := map[string]bool{}
	for _, f := range cancelFields {
		known[f.name] = true
		v, ok := obj[f.name]
		if !ok {
			return cancelRequest{}, fmt.Errorf("missing field %q", f.name)
		}
		if err := checkKind(f.name, f.kind, v); err != nil {
			return cancelRequest{}, err
		}
	}
	if err := unknownField(obj, known); err != nil {
		return cancelRequest{}, err
	}
	var c cancelRequest
	_ = json.Unmarshal(obj["cod_external_ticket_origin"], &c.origin)
	_ = json.Unmarshal(obj["id_external_protocol"], &c.protocol)
	_ = json.Unmarshal(obj["justification"], &c.justification)
	return c, nil
}

func unknownField(obj map[string]json.RawMessage, known map[string]bool) error {
	var unknown []string
	for k := range obj {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	// The first in byte order, so the reason is deterministic.
	first := unknown[0]
	for _, k := range unknown[1:] {
		first = min(first, k)
	}
	return fmt.Errorf("unknown field %q", first)
}

// checkAttributes validates one device's attribute object.
func checkAttributes(nameplate string, v json.RawMessage) error {
	if jsonType(v) != "object" {
		return fmt.Errorf("device %q: attributes must be an object, got %s", nameplate, jsonType(v))
	}
	obj, err := readObject(v)
	if err != nil {
		return fmt.Errorf("device %q: attributes: %v", nameplate, err)
	}
	for name, raw := range obj {
		want, ok := attrKinds[name]
		if !ok {
			return fmt.Errorf("device %q: unknown attribute %q", nameplate, name)
		}
		t := jsonType(raw)
		switch want {
		case "bool":
			ok = t == "boolean"
		case "number":
			ok = t == "integer" || t == "non-integer number"
		case "time":
			var s string
			ok = t == "null" || json.Unmarshal(raw, &s) == nil && validTime(s)
		case "strings":
			var ss []string
			ok = t == "array" && json.Unmarshal(raw, &ss) == nil
		}
		if !ok {
			return fmt.Errorf("device %q: attribute %q must be %s, got %s", nameplate, name, want, snip(string(raw), 60))
		}
	}
	return nil
}

func validTime(s string) bool {
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

type deviceUpdate struct {
	nameplate  string
	attributes json.RawMessage
}

// checkMany validates {"devices":[{"nameplate_num":..,"attributes":{..}}]}.
func checkMany(body []byte) ([]deviceUpdate, error) {
	obj, err := readObject(body)
	if err != nil {
		return nil, err
	}
	if err := unknownField(obj, map[string]bool{"devices": true}); err != nil {
		return nil, err
	}
	raw, ok := obj["devices"]
	if !ok {
		return nil, errors.New(`missing field "devices"`)
	}
	var list []json.RawMessage
	if jsonType(raw) != "array" || json.Unmarshal(raw, &list) != nil {
		return nil, errors.New(`field "devices" must be an array`)
	}
	if len(list) == 0 || len(list) > MaxDevicesPerCall {
		return nil, fmt.Errorf(`field "devices" must hold 1 to %d devices, has %d`, MaxDevicesPerCall, len(list))
	}
	out := make([]deviceUpdate, 0, len(list))
	for i, d := range list {
		if jsonType(d) != "object" {
			return nil, fmt.Errorf("devices[%d] must be an object", i)
		}
		dobj, err := readObject(d)
		if err != nil {
			return nil, fmt.Errorf("devices[%d]: %v", i, err)
		}
		if err := unknownField(dobj, map[string]bool{"nameplate_num": true, "attributes": true}); err != nil {
			return nil, fmt.Errorf("devices[%d]: %v", i, err)
		}
		var name string
		if err := checkKind("nameplate_num", kString, dobj["nameplate_num"]); err != nil {
			return nil, fmt.Errorf("devices[%d]: %v", i, err)
		}
		_ = json.Unmarshal(dobj["nameplate_num"], &name)
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("devices[%d]: nameplate_num is empty", i)
		}
		if err := checkAttributes(name, dobj["attributes"]); err != nil {
			return nil, err
		}
		out = append(out, deviceUpdate{name, dobj["attributes"]})
	}
	return out, nil
}

// checkOne validates {"attributes":{..}} for the nameplate of the path.
func checkOne(nameplate string, body []byte) (deviceUpdate, error) {
	obj, err := readObject(body)
	if err != nil {
		return deviceUpdate{}, err
	}
	if err := unknownField(obj, map[string]bool{"attributes": true}); err != nil {
		return deviceUpdate{}, err
	}
	if strings.TrimSpace(nameplate) == "" {
		return deviceUpdate{}, errors.New("empty nameplate in the path")
	}
	if err := checkAttributes(nameplate, obj["attributes"]); err != nil {
		return deviceUpdate{}, err
	}
	return deviceUpdate{nameplate, obj["attributes"]}, nil
}

func snip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
