package agent

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The device registry (CONTRACT §5): where each light point stands and what
// lamp it carries. It is read once at start and again on SIGHUP; a reload
// replaces the whole registry, never the detector's device state.

// ErrBadRegistry is wrapped by errors that reject a registry file as a whole
// (no header, no nameplate_num column, a column named twice, unreadable).
// Bad rows do not reject the file: they are RowErrors.
var ErrBadRegistry = errors.New("bad device registry")

// DeviceInfo is what the registry says about one device.
type DeviceInfo struct {
	Nameplate string `json:"nameplate_num"`
	// Site is the ticket's address block. Its Latitude and Longitude are
	// the registry's coordinates as decimal text ("" when it has none).
	Site        Site    `json:"site"`
	Latitude    float64 `json:"latitude,omitempty"`
	Longitude   float64 `json:"longitude,omitempty"`
	HasPosition bool    `json:"has_position"`
	// NominalPower is the lamp's rated power in watts, 0 when unknown.
	NominalPower float64 `json:"nominal_power,omitempty"`
}

// RowError is a registry row that was skipped (or, for the header line, a
// warning about ignored columns), with its 1-based line in the file.
type RowError struct {
	Line   int
	Reason string
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Reason) }

// Registry is an immutable device registry. A nil *Registry is an empty one.
type Registry struct {
	index   map[string]int32
	entries []regEntry
}

// regEntry is one device, kept compact: a fleet registry can hold 100,000
// rows on a gateway with little memory, and most of its text repeats (the
// municipality, the state, street names), so repeated strings are shared.
type regEntry struct {
	nameplate, address, neighborhood, municipality, state, zip, reference string
	lat, lon, nominalPower                                                float64
	addressNumber                                                         int32
	hasPos                                                                bool
}

// The registry's column names (CONTRACT §5).
const (
	colNameplate     = "nameplate_num"
	colAddress       = "address"
	colAddressNumber = "address_number"
	colNeighborhood  = "neighborhood"
	colMunicipality  = "municipality"
	colState         = "state_abbreviation"
	colZip           = "zip_code"
	colLatitude      = "latitude"
	colLongitude     = "longitude"
	colReference     = "reference_point"
	colNominalPower  = "nominal_power"
)

var registryColumns = []string{
	colNameplate, colAddress, colAddressNumber, colNeighborhood, colMunicipality,
	colState, colZip, colLatitude, colLongitude, colReference, colNominalPower,
}

// maxRegistryField bounds one field, so that a corrupt file (a missing
// closing quote swallowing the rest of the file into one field) is reported
// rather than becoming a megabyte-long street name.
const maxRegistryField = 512

// LoadRegistry reads the registry file at path. See ParseRegistry.
func LoadRegistry(path string) (*Registry, []RowError, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open device registry: %w", err)
	}
	defer f.Close()
	reg, rowErrs, err := ParseRegistry(f)
	if err != nil {
		return nil, rowErrs, fmt.Errorf("device registry %s: %w", path, err)
	}
	return reg, rowErrs, nil
}

// ParseRegistry reads a registry CSV: a header row naming the columns (in
// any order, case-insensitive; only nameplate_num is required; unknown
// columns are ignored with one warning), UTF-8 with or without a BOM. The
// delimiter is taken from the header: a comma, or a semicolon or tab as
// spreadsheets in Brazil export them, in which case numbers may use a
// decimal comma. Bad rows are skipped and returned as RowErrors with their
// line numbers: a bad or duplicate nameplate (the first row wins), a bad
// number, a latitude or longitude out of range, only one of them, or both 0.
// The error is non-nil (wrapping ErrBadRegistry) only when the file cannot
// be used at all.
func ParseRegistry(r io.Reader) (*Registry, []RowError, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read: %w", ErrBadRegistry, err)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	delim := registryDelimiter(data)

	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // row lengths are checked here, with a clearer reason
	cr.LazyQuotes = true    // a stray quote in an address is not worth a row
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true

	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, fmt.Errorf("%w: empty file: no header row", ErrBadRegistry)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: header: %w", ErrBadRegistry, err)
	}
	cols := make(map[string]int, len(header))
	var unknown []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if !slices.Contains(registryColumns, name) {
			if name != "" {
				unknown = append(unknown, strconv.Quote(strings.TrimSpace(h)))
			}
			continue
		}
		if _, dup := cols[name]; dup {
			return nil, nil, fmt.Errorf("%w: column %s appears twice in the header", ErrBadRegistry, name)
		}
		cols[name] = i
	}
	if _, ok := cols[colNameplate]; !ok {
		return nil, nil, fmt.Errorf("%w: the header has no %s column", ErrBadRegistry, colNameplate)
	}
	var rowErrs []RowError
	if len(unknown) > 0 {
		rowErrs = append(rowErrs, RowError{Line: 1, Reason: "unknown columns ignored: " + strings.Join(unknown, ", ")})
	}

	reg := &Registry{index: make(map[string]int32)}
	intern := make(map[string]string)
	p := rowParser{cols: cols, width: len(header), decimalComma: delim != ',', intern: intern}
	for {
		before := cr.InputOffset()
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) && cr.InputOffset() > before {
				rowErrs = append(rowErrs, RowError{Line: pe.StartLine, Reason: pe.Err.Error()})
				continue
			}
			return nil, rowErrs, fmt.Errorf("%w: %w", ErrBadRegistry, err)
		}
		if isBlankRecord(rec) {
			continue
		}
		line, _ := cr.FieldPos(0)
		e, reason := p.parse(rec)
		if reason == "" {
			if _, dup := reg.index[e.nameplate]; dup {
				reason = fmt.Sprintf("duplicate nameplate_num %q (an earlier row is kept)", e.nameplate)
			}
		}
		if reason != "" {
			rowErrs = append(rowErrs, RowError{Line: line, Reason: reason})
			continue
		}
		if len(reg.entries) >= math.MaxInt32 {
			return nil, rowErrs, fmt.Errorf("%w: too many rows", ErrBadRegistry)
		}
		reg.index[e.nameplate] = int32(len(reg.entries))
		reg.entries = append(reg.entries, e)
	}
	reg.entries = slices.Clip(reg.entries)
	return reg, rowErrs, nil
}

// registryDelimiter picks the delimiter from the header line: the one of
// comma, semicolon and tab it contains most (a header has no quoted text in
// practice; ties go to the comma).
func registryDelimiter(data []byte) rune {
	line := data
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	best, n := ',', bytes.Count(line, []byte{','})
	for _, d := range []rune{';', '\t'} {
		if c := bytes.Count(line, []byte(string(d))); c > n {
			best, n = d, c
		}
	}
	return best
}

func isBlankRecord(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

type rowParser struct {
	cols         map[string]int
	width        int
	decimalComma bool
	intern       map[string]string
}

func (p *rowParser) field(rec []string, col string) string {
	i, ok := p.cols[col]
	if !ok || i >= len(rec) {
		return "" // a short row: trailing empty fields omitted by the tool that wrote it
	}
	return strings.TrimSpace(rec[i])
}

// text interns a field: the fleet's municipality, state and streets repeat.
func (p *rowParser) text(rec []string, col string) string {
	s := p.field(rec, col)
	if s == "" {
		return ""
	}
	if v, ok := p.intern[s]; ok {
		return v
	}
	s = strings.Clone(s) // rec's strings are reused by the csv reader
	p.intern[s] = s
	return s
}

func (p *rowParser) number(rec []string, col string) (v float64, present bool, reason string) {
	s := p.field(rec, col)
	if s == "" {
		return 0, false, ""
	}
	t := s
	if p.decimalComma && strings.Count(t, ",") == 1 && !strings.Contains(t, ".") {
		t = strings.Replace(t, ",", ".", 1)
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, fmt.Sprintf("%s: %q is not a number", col, s)
	}
	return v, true, ""
}

func (p *rowParser) parse(rec []string) (regEntry, string) {
	var e regEntry
	if len(rec) > p.width {
		return e, fmt.Sprintf("%d fields, the header has %d (an unquoted delimiter in a value?)", len(rec), p.width)
	}
	for _, f := range rec {
		if len(f) > maxRegistryField {
			return e, fmt.Sprintf("a field is longer than %d bytes (an unclosed quote?)", maxRegistryField)
		}
	}
	name := p.field(rec, colNameplate)
	if name == "" {
		return e, "empty nameplate_num"
	}
	if !ValidNameplate(name) {
		return e, fmt.Sprintf("nameplate_num %q: want 1-64 characters of A-Z a-z 0-9 . _ -", name)
	}
	e.nameplate = strings.Clone(name)

	if s := p.field(rec, colAddressNumber); s != "" {
		switch strings.ToLower(strings.ReplaceAll(s, " ", "")) {
		case "s/n", "s/nº", "sn", "s.n.", "-": // "sem número": common in Brazilian addresses
		default:
			n, err := strconv.ParseInt(s, 10, 32)
			if err != nil || n < 0 {
				return e, fmt.Sprintf("address_number: %q is not a whole number", s)
			}
			e.addressNumber = int32(n)
		}
	}
	lat, hasLat, reason := p.number(rec, colLatitude)
	if reason != "" {
		return e, reason
	}
	lon, hasLon, reason := p.number(rec, colLongitude)
	if reason != "" {
		return e, reason
	}
	switch {
	case hasLat != hasLon:
		return e, "latitude and longitude must be given together"
	case hasLat && (lat < -90 || lat > 90):
		return e, fmt.Sprintf("latitude %v out of range -90..90", lat)
	case hasLon && (lon < -180 || lon > 180):
		return e, fmt.Sprintf("longitude %v out of range -180..180", lon)
	case hasLat && lat == 0 && lon == 0:
		// A spreadsheet's empty cell exported as 0: trusting it would put
		// the sun clock in the Gulf of Guinea.
		return e, "latitude and longitude are both 0 (a missing position?)"
	}
	e.lat, e.lon, e.hasPos = lat, lon, hasLat
	power, _, reason := p.number(rec, colNominalPower)
	if reason != "" {
		return e, reason
	}
	if power < 0 {
		return e, fmt.Sprintf("nominal_power %v is negative", power)
	}
	e.nominalPower = power
	e.address = p.text(rec, colAddress)
	e.neighborhood = p.text(rec, colNeighborhood)
	e.municipality = p.text(rec, colMunicipality)
	e.state = p.text(rec, colState)
	e.zip = p.text(rec, colZip)
	e.reference = strings.Clone(p.field(rec, colReference))
	return e, ""
}

// ValidNameplate reports whether s is a nameplate_num the contract accepts:
// 1–64 characters of A-Z a-z 0-9 . _ - (CONTRACT §3).
func ValidNameplate(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// Lookup returns what the registry says about a device.
func (r *Registry) Lookup(nameplate string) (DeviceInfo, bool) {
	e := r.entry(nameplate)
	if e == nil {
		return DeviceInfo{}, false
	}
	return e.info(), true
}

func (r *Registry) entry(nameplate string) *regEntry {
	if r == nil {
		return nil
	}
	i, ok := r.index[nameplate]
	if !ok {
		return nil
	}
	return &r.entries[i]
}

func (e *regEntry) info() DeviceInfo {
	info := DeviceInfo{
		Nameplate: e.nameplate,
		Site: Site{
			Address:        e.address,
			AddressNumber:  int(e.addressNumber),
			Neighborhood:   e.neighborhood,
			Municipality:   e.municipality,
			State:          e.state,
			ZipCode:        e.zip,
			ReferencePoint: e.reference,
		},
		NominalPower: e.nominalPower,
	}
	if e.hasPos {
		info.Latitude, info.Longitude, info.HasPosition = e.lat, e.lon, true
		info.Site.Latitude = strconv.FormatFloat(e.lat, 'f', -1, 64)
		info.Site.Longitude = strconv.FormatFloat(e.lon, 'f', -1, 64)
	}
	return info
}

// Len is the number of devices in the registry.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.entries)
}

// Nameplates returns the registry's nameplates in file order.
func (r *Registry) Nameplates() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.entries))
	for i := range r.entries {
		out[i] = r.entries[i].nameplate
	}
	return out
}
