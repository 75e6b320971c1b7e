package m2m

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/edge-agent/edge-agent/agent"
)

// TicketDefaults are the create fields that come from configuration rather
// than from the ticket (EDGE_TICKET_*). The reporter's phone and birth date
// are sent as null when empty.
type TicketDefaults struct {
	Origin       string // cod_external_ticket_origin
	OriginTypeID int    // ticket_origin_type_id
	ServiceCode  string // service_code
	WorksiteID   int    // id_worksite
	Reporter     string // reporter

	ReporterPhone     string // reporter_phone; "" is null
	ReporterBirthDate string // reporter_birth_date, "DD/MM/YYYY"; "" is null
}

// createBody is the documented create body. The field order is the order
// of the documentation's example; every key is always present (a missing
// key is not the same as null), so the nullable ones are pointers without
// omitempty.
type createBody struct {
	Origin              string  `json:"cod_external_ticket_origin"`
	OriginTypeID        int     `json:"ticket_origin_type_id"`
	Protocol            int64   `json:"id_external_protocol"`
	ExternalProtocol    string  `json:"external_protocol"`
	ServiceCode         string  `json:"service_code"`
	Justification       *string `json:"justification"`
	Description         string  `json:"description"`
	WorksiteID          int     `json:"id_worksite"`
	State               string  `json:"state_abbreviation"`
	Municipality        string  `json:"municipality"`
	Neighborhood        string  `json:"neighborhood"`
	Address             string  `json:"address"`
	AddressNumber       int     `json:"address_number"`
	ZipCode             *string `json:"zip_code"`
	Latitude            *string `json:"latitude"`
	Longitude           *string `json:"longitude"`
	ReferencePoint      string  `json:"reference_point"`
	Reporter            string  `json:"reporter"`
	ReporterPhone       *string `json:"reporter_phone"`
	ReporterBirthDate   *string `json:"reporter_birth_date"`
	Nameplate           string  `json:"nameplate_num"`
	AgeMajorityCheckbox int     `json:"age_majority_checkbox"`
}

// EncodeCreate builds the exact create body of a ticket (m2m-api.md §1):
// every documented key, in the documented order, with the documented JSON
// types. id_external_protocol is t.Protocol and external_protocol its
// decimal text; justification is null; zip_code, latitude, longitude,
// reporter_phone and reporter_birth_date are null when empty; address_number
// is 0 when unknown. Text that is not valid UTF-8 has its bad bytes replaced
// by U+FFFD (a ticket is never lost over a stray byte of a CSV). It fails,
// wrapping ErrInvalidInput, for a missing ticket, a protocol under 1, an
// empty nameplate or an empty origin.
func EncodeCreate(t *agent.Ticket, d TicketDefaults) ([]byte, error) {
	switch {
	case t == nil:
		return nil, fmt.Errorf("encode create: %w: no ticket", ErrInvalidInput)
	case t.Protocol < 1:
		return nil, fmt.Errorf("encode create: %w: id_external_protocol %d is not positive", ErrInvalidInput, t.Protocol)
	case strings.TrimSpace(t.Nameplate) == "":
		return nil, fmt.Errorf("encode create: %w: ticket %d has no nameplate", ErrInvalidInput, t.Protocol)
	case strings.TrimSpace(d.Origin) == "":
		return nil, fmt.Errorf("encode create: %w: no cod_external_ticket_origin", ErrInvalidInput)
	}
	s := &t.Site
	b := createBody{
		Origin:            text(d.Origin),
		OriginTypeID:      d.OriginTypeID,
		Protocol:          t.Protocol,
		ExternalProtocol:  strconv.FormatInt(t.Protocol, 10),
		ServiceCode:       text(d.ServiceCode),
		Justification:     nil,
		Description:       text(t.Description),
		WorksiteID:        d.WorksiteID,
		State:             text(s.State),
		Municipality:      text(s.Municipality),
		Neighborhood:      text(s.Neighborhood),
		Address:           text(s.Address),
		AddressNumber:     s.AddressNumber,
		ZipCode:           nullable(s.ZipCode),
		Latitude:          nullable(s.Latitude),
		Longitude:         nullable(s.Longitude),
		ReferencePoint:    text(s.ReferencePoint),
		Reporter:          text(d.Reporter),
		ReporterPhone:     nullable(d.ReporterPhone),
		ReporterBirthDate: nullable(d.ReporterBirthDate),
		Nameplate:         text(t.Nameplate),
	}
	out, err := marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode create: %w", err)
	}
	return out, nil
}

func text(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	s = text(s)
	return &s
}

// marshal encodes v as compact JSON without HTML escaping (descriptions
// and addresses are sent as written) and without a trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// createResponse is what a 201 to a create says [doc]:
// {"id_demanda": 0, "operacao": "cria", "data_recebido": "string", "status": "ok"}.
type createResponse struct {
	IDDemanda int64
	Operacao  string
	Status    string
	// DataRecebido is data_recebido as text: the documentation shows a
	// string, the sister API epoch milliseconds; a number is kept as its
	// decimal text.
	DataRecebido string
}

var errBadCreateResponse = errors.New("unreadable create answer")

// parseCreateResponse reads the answer to a create. It accepts id_demanda
// as a JSON integer (or a float with an integral value, or a string of
// digits, as some gateways re-encode numbers) and data_recebido as a string
// or a number, and ignores other fields. A missing or unreadable id_demanda
// is an error; the caller still treats the 2xx as success.
func parseCreateResponse(body []byte) (createResponse, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return createResponse{}, fmt.Errorf("%w: %v", errBadCreateResponse, err)
	}
	if raw == nil {
		return createResponse{}, fmt.Errorf("%w: not an object", errBadCreateResponse)
	}
	var r createResponse
	id, ok := raw["id_demanda"]
	if !ok {
		return createResponse{}, fmt.Errorf("%w: no id_demanda", errBadCreateResponse)
	}
	n, err := parseID(id)
	if err != nil {
		return createResponse{}, fmt.Errorf("%w: id_demanda: %v", errBadCreateResponse, err)
	}
	r.IDDemanda = n
	r.Operacao = optString(raw["operacao"])
	r.Status = optString(raw["status"])
	if v, ok := raw["data_recebido"]; ok {
		var num json.Number
		if err := json.Unmarshal(v, &num); err == nil {
			r.DataRecebido = num.String()
		} else {
			r.DataRecebido = optString(v)
		}
	}
	return r, nil
}

// parseID reads a non-negative integer id from a JSON number or string.
func parseID(v json.RawMessage) (int64, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		var num json.Number
		if err := json.Unmarshal(v, &num); err != nil {
			return 0, fmt.Errorf("not a number: %s", snippet(string(v), 40))
		}
		s = num.String()
	}
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("negative: %d", n)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("not a number: %q", snippet(s, 40))
	}
	// 2^63 is exactly representable; anything at or above it overflows.
	if f != math.Trunc(f) || f < 0 || f >= 1<<63 {
		return 0, fmt.Errorf("not a non-negative integer: %q", snippet(s, 40))
	}
	return int64(f), nil
}

func optString(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) != nil {
		return ""
	}
	return s
}
