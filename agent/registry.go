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
//
// It is kept compact: a gateway may hold 100,000 rows in little memory. All
// its text is one string (text), each distinct value once, referred to by a
// uint32 id; rows hold ids and fixed-point numbers; the index is an
// open-addressing table of row numbers, not a map of strings. 75 bytes a
// device with lightsim's 100,000-device registry, where a map to rows of
// strings and float64s took 206.
type Registry struct {
	text  string   // every string of the file once, back to back
	offs  []uint32 // string id i is text[offs[i]:offs[i+1]]; id 0 is ""
	rows  []regEntry
	index []uint32 // by nameplate: slots of rows (see slotOf)
	// exact holds the numbers of the rows (regExact) whose position or
	// nominal power the fixed-point fields cannot give back bit for bit.
	exact map[int32]regNumbers
}

// regEntry is one device: string ids into Registry.text and fixed-point
// numbers, 44 bytes.
type regEntry struct {
	nameplate, address, neighborhood, municipality, state, zip, reference uint32
	lat, lon                                                              int32 // 1e-7 degrees (1.1 cm), with regHasPos
	addressNumber                                                         int32
	power                                                                 uint16 // nominal power in 0.1 W
	flags                                                                 uint8
}

const (
	regHasPos uint8 = 1 << iota // the row has a position
	regExact                    // lat, lon and power are in Registry.exact
)

// regNumbers are a row's numbers as parsed.
type regNumbers struct{ lat, lon, power float64 }

// Fixed-point scales of regEntry. A registry's numbers are decimal text
// with few digits (lightsim writes 6 decimals, a city export 5 to 7), so
// nearly every row fits; a value that would not come back bit for bit (8
// decimals, a lamp over 6553.5 W, -0) keeps its float64 in Registry.exact
// and behaves exactly as parsed.
const (
	posScale   = 1e7
	powerScale = 10
)

// fixed returns v·scale as an integer within ±lim, if that integer divided
// by scale is v again, bit for bit.
func fixed(v, scale, lim float64) (int64, bool) {
	q := math.Round(v * scale)
	if !(q >= -lim && q <= lim) {
		return 0, false
	}
	i := int64(q)
	if math.Float64bits(float64(i)/scale) != math.Float64bits(v) {
		return 0, false
	}
	return i, true
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

	b := newRegistryBuilder(bytes.Count(data, []byte{'\n'}) + 1)
	p := rowParser{cols: cols, width: len(header), decimalComma: delim != ','}
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
		row, reason := p.parse(rec)
		if reason == "" {
			if _, dup := b.find(row.nameplate); dup {
				reason = fmt.Sprintf("duplicate nameplate_num %q (an earlier row is kept)", row.nameplate)
			}
		}
		if reason != "" {
			rowErrs = append(rowErrs, RowError{Line: line, Reason: reason})
			continue
		}
		if err := b.add(&row); err != nil {
			return nil, rowErrs, err
		}
	}
	return b.finish(), rowErrs, nil
}

// registryBuilder builds a Registry row by row.
type registryBuilder struct {
	reg  Registry
	text []byte
	// intern finds the id of a repeated value (a municipality, a street):
	// a city's registry repeats most of its text.
	intern map[string]uint32
}

// newRegistryBuilder sizes the index for up to lines rows (a line count
// of the file: never fewer than its rows).
func newRegistryBuilder(lines int) *registryBuilder {
	b := &registryBuilder{intern: make(map[string]uint32)}
	b.reg.offs = []uint32{0, 0}
	b.reg.index = make([]uint32, tableSize(lines))
	return b
}

// str stores s and returns its id; an interned value is stored once.
func (b *registryBuilder) str(s string, intern bool) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	if intern {
		if id, ok := b.intern[s]; ok {
			return id, nil
		}
	}
	if int64(len(b.text))+int64(len(s)) > math.MaxUint32 || int64(len(b.reg.offs)) > math.MaxUint32 {
		return 0, fmt.Errorf("%w: more than 4 GiB of text", ErrBadRegistry)
	}
	id := uint32(len(b.reg.offs) - 1)
	b.text = append(b.text, s...)
	b.reg.offs = append(b.reg.offs, uint32(len(b.text)))
	if intern {
		b.intern[strings.Clone(s)] = id // s is a view of the csv reader's reused record
	}
	return id, nil
}

// find looks a nameplate up among the rows added so far.
func (b *registryBuilder) find(name string) (int32, bool) {
	idx, offs := b.reg.index, b.reg.offs
	m := mixHash(hashName(name))
	for i := slotOf(m, len(idx)); ; i++ {
		if i == len(idx) {
			i = 0
		}
		v := idx[i]
		if v == 0 {
			return -1, false
		}
		if slotTagged(v, m) {
			row := slotPos(v)
			id := b.reg.rows[row].nameplate
			if string(b.text[offs[id]:offs[id+1]]) == name {
				return int32(row), true
			}
		}
	}
}

// add appends a parsed row whose nameplate is not in the registry yet.
func (b *registryBuilder) add(row *parsedRow) error {
	r := &b.reg
	if len(r.rows) >= maxSlotPos {
		return fmt.Errorf("%w: more than %d rows", ErrBadRegistry, maxSlotPos)
	}
	var e regEntry
	var err error
	for _, f := range []struct {
		dst    *uint32
		s      string
		intern bool
	}{
		{&e.nameplate, row.nameplate, false}, // unique by construction
		{&e.address, row.address, true},
		{&e.neighborhood, row.neighborhood, true},
		{&e.municipality, row.municipality, true},
		{&e.state, row.state, true},
		{&e.zip, row.zip, true},
		{&e.reference, row.reference, false}, // usually one per post
	} {
		if *f.dst, err = b.str(f.s, f.intern); err != nil {
			return err
		}
	}
	e.addressNumber = row.addressNumber
	n := int32(len(r.rows))
	lat, okLat := fixed(row.lat, posScale, math.MaxInt32)
	lon, okLon := fixed(row.lon, posScale, math.MaxInt32)
	power, okPower := fixed(row.power, powerScale, math.MaxUint16)
	if okLat && okLon && okPower {
		e.lat, e.lon, e.power = int32(lat), int32(lon), uint16(power)
	} else {
		if r.exact == nil {
			r.exact = make(map[int32]regNumbers)
		}
		r.exact[n] = regNumbers{lat: row.lat, lon: row.lon, power: row.power}
		e.flags |= regExact
	}
	if row.hasPos {
		e.flags |= regHasPos
	}
	if 4*(len(r.rows)+1) > 3*len(r.index) { // only if the line count was short: it never is
		b.grow(tableSize(2 * (len(r.rows) + 1)))
	}
	r.rows = append(r.rows, e)
	insertSlot(r.index, hashName(row.nameplate), int(n))
	return nil
}

func (b *registryBuilder) grow(size int) {
	r := &b.reg
	r.index = make([]uint32, size)
	for i := range r.rows {
		id := r.rows[i].nameplate
		insertSlot(r.index, hashName(string(b.text[r.offs[id]:r.offs[id+1]])), i)
	}
}

func (b *registryBuilder) finish() *Registry {
	r := &b.reg
	r.text = string(b.text)
	// Exact copies: what append grew holds up to a quarter more.
	r.offs = append(make([]uint32, 0, len(r.offs)), r.offs...)
	r.rows = append(make([]regEntry, 0, len(r.rows)), r.rows...)
	if len(r.index) > 2*tableSize(len(r.rows)) {
		b.grow(tableSize(len(r.rows))) // many lines were not rows: do not keep their slots
	}
	// A Registry of its own: a pointer into b would keep the builder's
	// text buffer and intern map alive with it.
	reg := *r
	*b = registryBuilder{}
	return &reg
}

// hashName is FNV-1a of a nameplate. The detector's shard is hashName %
// nShards; a name's slots in an index come from mixHash(hashName).
func hashName(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// tableSize is the number of slots of an index of n names: a load of at
// most 3/4 keeps linear probing short, and always leaves an empty slot (a
// probe stops there).
func tableSize(n int) int { return n + n/3 + 1 }

// An index (the registry's, a detector shard's) is an open-addressing
// table of uint32 slots, probed linearly from slotOf. A slot is 0 when
// empty; else its low 24 bits are a position (a row, a device) + 1 and its
// high 8 bits a tag from the name's hash, so that a probe passes other
// names without reading them: reading a name is a chain of loads (device,
// row, text), and at a load of 3/4 a lookup meets 1.5 other names on
// average.
const (
	slotPosBits = 24
	maxSlotPos  = 1<<slotPosBits - 1 // positions are 0..maxSlotPos-1
)

// mixHash mixes a name's hash (murmur3's finaliser): FNV's low bits pick
// the shard, so they are the same for all the names of a shard.
func mixHash(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// slotOf is where the probe for mixed hash m starts in n slots (n > 0):
// m's high bits scaled to n, without a division.
func slotOf(m uint32, n int) int { return int(uint64(m) * uint64(n) >> 32) }

// slotTagged reports whether slot v carries mixed hash m's tag (its low
// byte: independent of the high bits slotOf uses).
func slotTagged(v, m uint32) bool { return v>>slotPosBits == m&0xff }

// slotPos is the position a non-empty slot holds.
func slotPos(v uint32) int { return int(v&maxSlotPos) - 1 }

// insertSlot puts position pos (< maxSlotPos) of a name of hash h in the
// first empty slot of its probe. The table has an empty slot (tableSize).
func insertSlot(idx []uint32, h uint32, pos int) {
	m := mixHash(h)
	v := (m&0xff)<<slotPosBits | uint32(pos+1)
	for i := slotOf(m, len(idx)); ; i++ {
		if i == len(idx) {
			i = 0
		}
		if idx[i] == 0 {
			idx[i] = v
			return
		}
	}
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
}

// parsedRow is a valid row as read; its strings may be views of the csv
// reader's reused record.
type parsedRow struct {
	nameplate, address, neighborhood, municipality, state, zip, reference string
	lat, lon, power                                                       float64
	addressNumber                                                         int32
	hasPos                                                                bool
}

func (p *rowParser) field(rec []string, col string) string {
	i, ok := p.cols[col]
	if !ok || i >= len(rec) {
		return "" // a short row: trailing empty fields omitted by the tool that wrote it
	}
	return strings.TrimSpace(rec[i])
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

func (p *rowParser) parse(rec []string) (parsedRow, string) {
	var e parsedRow
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
	e.nameplate = name

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
	e.power = power
	e.address = p.field(rec, colAddress)
	e.neighborhood = p.field(rec, colNeighborhood)
	e.municipality = p.field(rec, colMunicipality)
	e.state = p.field(rec, colState)
	e.zip = p.field(rec, colZip)
	e.reference = p.field(rec, colReference)
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
	row, ok := r.find(nameplate)
	if !ok {
		return DeviceInfo{}, false
	}
	return r.info(row), true
}

// find returns the row of a nameplate.
func (r *Registry) find(nameplate string) (int32, bool) {
	if r == nil || len(r.rows) == 0 {
		return -1, false
	}
	idx := r.index
	m := mixHash(hashName(nameplate))
	for i := slotOf(m, len(idx)); ; i++ {
		if i == len(idx) {
			i = 0
		}
		v := idx[i]
		if v == 0 {
			return -1, false
		}
		if row := int32(slotPos(v)); slotTagged(v, m) && r.name(row) == nameplate {
			return row, true
		}
	}
}

func (r *Registry) str(id uint32) string { return r.text[r.offs[id]:r.offs[id+1]] }

// name is the nameplate of a row: a view of the registry's text.
func (r *Registry) name(row int32) string { return r.str(r.rows[row].nameplate) }

// position is a row's position, if it has one.
func (r *Registry) position(row int32) (lat, lon float64, ok bool) {
	e := &r.rows[row]
	switch {
	case e.flags&regHasPos == 0:
		return 0, 0, false
	case e.flags&regExact != 0:
		x := r.exact[row]
		return x.lat, x.lon, true
	}
	return float64(e.lat) / posScale, float64(e.lon) / posScale, true
}

// power is a row's nominal power in watts, 0 when unknown.
func (r *Registry) power(row int32) float64 {
	e := &r.rows[row]
	if e.flags&regExact != 0 {
		return r.exact[row].power
	}
	return float64(e.power) / powerScale
}

func (r *Registry) info(row int32) DeviceInfo {
	e := &r.rows[row]
	info := DeviceInfo{
		Nameplate: r.str(e.nameplate),
		Site: Site{
			Address:        r.str(e.address),
			AddressNumber:  int(e.addressNumber),
			Neighborhood:   r.str(e.neighborhood),
			Municipality:   r.str(e.municipality),
			State:          r.str(e.state),
			ZipCode:        r.str(e.zip),
			ReferencePoint: r.str(e.reference),
		},
		NominalPower: r.power(row),
	}
	if lat, lon, ok := r.position(row); ok {
		info.Latitude, info.Longitude, info.HasPosition = lat, lon, true
		info.Site.Latitude = strconv.FormatFloat(lat, 'f', -1, 64)
		info.Site.Longitude = strconv.FormatFloat(lon, 'f', -1, 64)
	}
	return info
}

// Len is the number of devices in the registry.
func (r *Registry) Len() int {
	if r == nil {
		return 0
	}
	return len(r.rows)
}

// Nameplates returns the registry's nameplates in file order.
func (r *Registry) Nameplates() []string {
	if r == nil {
		return nil
	}
	out := make([]string, len(r.rows))
	for i := range r.rows {
		out[i] = r.name(int32(i))
	}
	return out
}
