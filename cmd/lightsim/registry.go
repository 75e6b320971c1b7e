package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// RegistryRow is what lightsim takes from a CONTRACT §5 registry row: the
// nameplate, and the position and nominal power when given. Addresses are
// the agent's business: lightsim ignores them when reading.
type RegistryRow struct {
	Nameplate    string
	Lat, Lon     float64
	HasPosition  bool
	NominalPower float64 // 0 when not given
}

// registryColumns is the CONTRACT §5 header, in the order lightsim writes it.
var registryColumns = []string{"nameplate_num", "address", "address_number", "neighborhood",
	"municipality", "state_abbreviation", "zip_code", "latitude", "longitude", "reference_point", "nominal_power"}

// ErrRegistry is wrapped by registry errors that stop the read.
var ErrRegistry = errors.New("registry")

// readRegistry parses a registry CSV: header row, columns in any order,
// only nameplate_num required, a UTF-8 BOM ignored. A bad row is skipped
// and reported in skipped ("line N: reason"); the read fails only when the
// file is unusable (no header, no nameplate_num column, no good row).
func readRegistry(r io.Reader) (rows []RegistryRow, skipped []string, err error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read: %w", ErrRegistry, err)
	}
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.TrimLeadingSpace = true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: header: %w", ErrRegistry, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(h))] = i
	}
	iName, ok := col["nameplate_num"]
	if !ok {
		return nil, nil, fmt.Errorf("%w: no nameplate_num column in the header", ErrRegistry)
	}
	field := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	seen := map[string]bool{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				skipped = append(skipped, fmt.Sprintf("line %d: %v", pe.Line, pe.Err))
				continue
			}
			return nil, skipped, fmt.Errorf("%w: %w", ErrRegistry, err)
		}
		line, _ := cr.FieldPos(0)
		row, reason := parseRegistryRow(rec, iName, field)
		switch {
		case reason != "":
		case seen[row.Nameplate]:
			reason = fmt.Sprintf("nameplate %q twice", row.Nameplate)
		}
		if reason != "" {
			skipped = append(skipped, fmt.Sprintf("line %d: %s", line, reason))
			continue
		}
		seen[row.Nameplate] = true
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, skipped, fmt.Errorf("%w: no usable device row", ErrRegistry)
	}
	return rows, skipped, nil
}

func parseRegistryRow(rec []string, iName int, field func([]string, string) string) (RegistryRow, string) {
	var row RegistryRow
	if iName < len(rec) {
		row.Nameplate = strings.TrimSpace(rec[iName])
	}
	if !validNameplate(row.Nameplate) {
		return row, fmt.Sprintf("bad nameplate_num %q", row.Nameplate)
	}
	lat, lon := field(rec, "latitude"), field(rec, "longitude")
	switch {
	case lat == "" && lon == "":
	case lat == "" || lon == "":
		return row, "latitude and longitude must be given together"
	default:
		var ok bool
		row.Lat, row.Lon, ok = parseLatLon(lat + "," + lon)
		if !ok {
			return row, fmt.Sprintf("bad position %q,%q", lat, lon)
		}
		row.HasPosition = true
	}
	if p := field(rec, "nominal_power"); p != "" {
		v, err := strconv.ParseFloat(p, 64)
		if err != nil || !(v > 0) || math.IsInf(v, 0) {
			return row, fmt.Sprintf("bad nominal_power %q", p)
		}
		row.NominalPower = v
	}
	return row, ""
}

// loadRegistry reads a registry file.
func loadRegistry(path string) ([]RegistryRow, []string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrRegistry, err)
	}
	defer f.Close()
	return readRegistry(f)
}

// streets are invented addresses for --write-registry: the M2M API wants an
// address on every ticket, and a crew reading "Rua 3" is better served by a
// plausible one.
var streets = []string{"Rua das Acácias", "Avenida Leopoldino de Oliveira", "Rua Tristão de Castro",
	"Avenida Santos Dumont", "Rua Major Eustáquio", "Avenida Guilherme Ferreira", "Rua São Benedito",
	"Rua dos Ipês", "Avenida Fidélis Reis", "Rua Vigário Silva"}
var neighborhoods = []string{"Centro", "Abadia", "Fabrício", "Mercês", "São Benedito", "Boa Vista", "Estados Unidos"}

// writeRegistry writes the fleet as a CONTRACT §5 registry: its nameplates,
// positions and nominal powers, with invented addresses in the fleet's
// municipality.
func writeRegistry(w io.Writer, f *Fleet) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(registryColumns); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	municipality := f.Place.Name
	if municipality == "" {
		municipality = "Simulada"
	}
	for _, d := range f.Devices {
		i := d.Index
		rec := []string{
			d.Nameplate,
			streets[i%len(streets)],
			strconv.Itoa(10 + (i*37)%1990),
			neighborhoods[(i/len(streets))%len(neighborhoods)],
			municipality,
			f.Place.State,
			"",
			strconv.FormatFloat(d.Lat, 'f', 6, 64),
			strconv.FormatFloat(d.Lon, 'f', 6, 64),
			fmt.Sprintf("Poste %d", i),
			strconv.FormatFloat(d.NominalPower, 'f', -1, 64),
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("write registry: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	return nil
}

// writeRegistryFile writes the registry atomically (temp file, rename), so
// that an agent reloading it on SIGHUP never reads half a file.
func writeRegistryFile(path string, f *Fleet) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".lightsim-registry-*")
	if err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeRegistry(tmp, f); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write registry: %w", err)
	}
	return nil
}
