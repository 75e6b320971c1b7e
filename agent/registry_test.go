package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadRegistryGoodFile(t *testing.T) {
	for _, file := range []string{"registry.csv", "registry_bom.csv"} {
		t.Run(file, func(t *testing.T) {
			reg, rowErrs, err := LoadRegistry(filepath.Join("testdata", file))
			require.NoError(t, err)
			assert.Empty(t, rowErrs)
			require.Equal(t, 4, reg.Len())
			assert.Equal(t, []string{"IP00001", "IP00002", "IP00003", "gw-test_04.b"}, reg.Nameplates())

			info, ok := reg.Lookup("IP00001")
			require.True(t, ok)
			assert.Equal(t, DeviceInfo{
				Nameplate: "IP00001",
				Site: Site{
					Address: "Av. Leopoldino de Oliveira", AddressNumber: 3490, Neighborhood: "Centro",
					Municipality: "Uberaba", State: "MG", ZipCode: "38010-000",
					ReferencePoint: "Em frente à praça", Latitude: "-19.7472", Longitude: "-47.9381",
				},
				Latitude: -19.7472, Longitude: -47.9381, HasPosition: true, NominalPower: 100,
			}, info)

			info, ok = reg.Lookup("IP00002")
			require.True(t, ok)
			assert.Equal(t, 0, info.Site.AddressNumber, "S/N is no number")
			assert.Equal(t, "-19.748", info.Site.Latitude)
			assert.Equal(t, 150.0, info.NominalPower)

			info, ok = reg.Lookup("IP00003")
			require.True(t, ok)
			assert.Equal(t, "Av. Santos Dumont, trecho 2", info.Site.Address, "quoted comma")
			assert.Equal(t, `Poste "azul", perto da escola`, info.Site.ReferencePoint)
			assert.False(t, info.HasPosition)
			assert.Empty(t, info.Site.Latitude)
			assert.Zero(t, info.NominalPower)

			info, ok = reg.Lookup("gw-test_04.b")
			require.True(t, ok)
			assert.Equal(t, DeviceInfo{Nameplate: "gw-test_04.b"}, info)

			_, ok = reg.Lookup("IP99999")
			assert.False(t, ok)
		})
	}
}

func TestParseRegistryBadRows(t *testing.T) {
	reg, rowErrs, err := LoadRegistry(filepath.Join("testdata", "registry_bad.csv"))
	require.NoError(t, err)
	assert.Equal(t, []string{"OK-1", "OK-11", "OK-13"}, reg.Nameplates())
	info, _ := reg.Lookup("OK-13")
	assert.Equal(t, 80.0, info.NominalPower)
	assert.Equal(t, 7, info.Site.AddressNumber)

	want := []struct {
		line   int
		reason string
	}{
		{1, `unknown columns ignored: "color"`},
		{3, `nameplate_num "bad nameplate"`},
		{4, `duplicate nameplate_num "OK-1"`},
		{5, "latitude and longitude must be given together"},
		{6, "latitude -91 out of range"},
		{7, "longitude 181 out of range"},
		{8, `latitude: "abc" is not a number`},
		{9, `nominal_power: "lots" is not a number`},
		{10, `address_number: "12a"`},
		{11, "both 0"},
		{12, "nominal_power -5 is negative"},
		{13, "7 fields, the header has 6"},
		{16, `nominal_power: "NaN" is not a number`},
	}
	require.Len(t, rowErrs, len(want), "%v", rowErrs)
	for i, w := range want {
		assert.Equal(t, w.line, rowErrs[i].Line, "row error %d: %v", i, rowErrs[i])
		assert.Contains(t, rowErrs[i].Reason, w.reason)
		assert.True(t, strings.HasPrefix(rowErrs[i].Error(), "line "), rowErrs[i].Error())
	}
}

func TestParseRegistryColumnsAnyOrderAndCase(t *testing.T) {
	in := "Nominal_Power , LONGITUDE,latitude, nameplate_num\n" +
		"70,-47.5,-19.5,A1\n" +
		"  ,  ,  ,A2\n"
	reg, rowErrs, err := ParseRegistry(strings.NewReader(in))
	require.NoError(t, err)
	assert.Empty(t, rowErrs)
	a1, ok := reg.Lookup("A1")
	require.True(t, ok)
	assert.Equal(t, -19.5, a1.Latitude)
	assert.Equal(t, -47.5, a1.Longitude)
	assert.Equal(t, 70.0, a1.NominalPower)
	a2, ok := reg.Lookup("A2")
	require.True(t, ok)
	assert.False(t, a2.HasPosition)
}

func TestParseRegistrySemicolonDecimalComma(t *testing.T) {
	// As a spreadsheet set to Portuguese exports it.
	in := "\ufeffnameplate_num;latitude;longitude;nominal_power;address\n" +
		"B1;-19,7472;-47,9381;99,5;Rua Um, 10\n"
	reg, rowErrs, err := ParseRegistry(strings.NewReader(in))
	require.NoError(t, err)
	assert.Empty(t, rowErrs)
	b1, ok := reg.Lookup("B1")
	require.True(t, ok)
	assert.Equal(t, -19.7472, b1.Latitude)
	assert.Equal(t, -47.9381, b1.Longitude)
	assert.Equal(t, 99.5, b1.NominalPower)
	assert.Equal(t, "Rua Um, 10", b1.Site.Address)
}

func TestParseRegistryRejectsFile(t *testing.T) {
	for name, in := range map[string]string{
		"empty":          "",
		"no nameplate":   "address,latitude\nRua,1\n",
		"duplicate col":  "nameplate_num,latitude,Latitude\nA,1,2\n",
		"only a BOM":     "\ufeff",
		"blank header":   "\n\n",
		"header unknown": "serial,lat\n1,2\n",
	} {
		t.Run(name, func(t *testing.T) {
			reg, _, err := ParseRegistry(strings.NewReader(in))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrBadRegistry)
			assert.Nil(t, reg)
		})
	}
}

func TestLoadRegistryMissingFile(t *testing.T) {
	_, _, err := LoadRegistry(filepath.Join(t.TempDir(), "nope.csv"))
	require.Error(t, err)
	assert.True(t, errors.Is(err, fs.ErrNotExist), err)
	assert.Contains(t, err.Error(), "open device registry")
}

func TestNilRegistry(t *testing.T) {
	var r *Registry
	assert.Zero(t, r.Len())
	assert.Nil(t, r.Nameplates())
	_, ok := r.Lookup("x")
	assert.False(t, ok)
}

func TestValidNameplate(t *testing.T) {
	for s, want := range map[string]bool{
		"IP00001": true, "a.b_c-D9": true, strings.Repeat("x", 64): true,
		"": false, strings.Repeat("x", 65): false, "a b": false, "a/b": false, "á": false, "a+b": false,
	} {
		assert.Equal(t, want, ValidNameplate(s), "%q", s)
	}
}

// FuzzParseRegistry: any input either is rejected as a whole with
// ErrBadRegistry or yields a registry whose every device is valid, and
// every skipped row has a line number inside the input.
func FuzzParseRegistry(f *testing.F) {
	for _, file := range []string{"registry.csv", "registry_bom.csv", "registry_bad.csv"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("nameplate_num;latitude;longitude\nA;-1,5;2,5\n")
	f.Add("nameplate_num\n\"unterminated\n")
	f.Add("nameplate_num,latitude\nA,1e400\n")
	f.Fuzz(func(t *testing.T, in string) {
		reg, rowErrs, err := ParseRegistry(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadRegistry) {
				t.Fatalf("error does not wrap ErrBadRegistry: %v", err)
			}
			if reg != nil {
				t.Fatal("registry returned with an error")
			}
			return
		}
		lines := strings.Count(in, "\n") + 1
		for _, re := range rowErrs {
			if re.Line < 1 || re.Line > lines || re.Reason == "" {
				t.Fatalf("row error %+v outside the %d-line input", re, lines)
			}
		}
		names := reg.Nameplates()
		if len(names) != reg.Len() {
			t.Fatalf("Nameplates %d != Len %d", len(names), reg.Len())
		}
		seen := map[string]bool{}
		for _, n := range names {
			if seen[n] {
				t.Fatalf("duplicate %q kept", n)
			}
			seen[n] = true
			info, ok := reg.Lookup(n)
			if !ok || info.Nameplate != n || !ValidNameplate(n) {
				t.Fatalf("bad device %q: %+v", n, info)
			}
			if info.HasPosition {
				if info.Latitude < -90 || info.Latitude > 90 || info.Longitude < -180 || info.Longitude > 180 ||
					info.Site.Latitude == "" || info.Site.Longitude == "" {
					t.Fatalf("bad position: %+v", info)
				}
			} else if info.Latitude != 0 || info.Longitude != 0 || info.Site.Latitude != "" {
				t.Fatalf("position without HasPosition: %+v", info)
			}
			if info.NominalPower < 0 || math.IsNaN(info.NominalPower) || math.IsInf(info.NominalPower, 0) {
				t.Fatalf("bad nominal power: %+v", info)
			}
		}
	})
}

// TestRegistryNumbersExact: the compact rows keep positions and nominal
// powers in fixed point; every number must still come back bit for bit as
// parsed (and so print the same in the ticket's address), whether it fits
// the fixed point or falls back to the exact table.
func TestRegistryNumbersExact(t *testing.T) {
	rows := []struct {
		lat, lon, power string
		compact         bool // expected to fit the fixed-point fields
	}{
		{"-19.7472", "-47.9381", "100", true},
		{"-19.733929", "-47.947054", "150", true}, // as lightsim writes them
		{"89.9999999", "-179.9999999", "99.5", true},
		{"-90", "180", "6553.5", true},
		{"", "", "", true},
		{"-19.12345678", "-47.1", "100", false}, // 8 decimals
		{"-19.7", "-47.9", "70.25", false},      // 2 decimals of a watt
		{"-19.7", "-47.9", "7000", false},       // over 6553.5 W
		{"-19.7", "-47.9", "1e300", false},
		{"-0", "-47.9", "100", false}, // -0 prints as "-0": kept
		{"-19.7", "-47.9", "-0", false},
	}
	var sb strings.Builder
	sb.WriteString("nameplate_num,latitude,longitude,nominal_power\n")
	for i, r := range rows {
		fmt.Fprintf(&sb, "N%d,%s,%s,%s\n", i, r.lat, r.lon, r.power)
	}
	reg, rowErrs, err := ParseRegistry(strings.NewReader(sb.String()))
	require.NoError(t, err)
	require.Empty(t, rowErrs)
	parse := func(s string) float64 {
		if s == "" {
			return 0
		}
		v, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err)
		return v
	}
	inexact := 0
	for i, r := range rows {
		info, ok := reg.Lookup(fmt.Sprintf("N%d", i))
		require.True(t, ok)
		lat, lon, power := parse(r.lat), parse(r.lon), parse(r.power)
		assert.Equal(t, math.Float64bits(power), math.Float64bits(info.NominalPower), "row %d power %s: %v", i, r.power, info.NominalPower)
		if r.lat == "" {
			assert.False(t, info.HasPosition)
		} else {
			assert.Equal(t, math.Float64bits(lat), math.Float64bits(info.Latitude), "row %d lat %s: %v", i, r.lat, info.Latitude)
			assert.Equal(t, math.Float64bits(lon), math.Float64bits(info.Longitude), "row %d lon %s: %v", i, r.lon, info.Longitude)
			assert.Equal(t, strconv.FormatFloat(lat, 'f', -1, 64), info.Site.Latitude)
			assert.Equal(t, strconv.FormatFloat(lon, 'f', -1, 64), info.Site.Longitude)
		}
		if !r.compact {
			inexact++
		}
	}
	assert.Len(t, reg.exact, inexact, "only the numbers the fixed point cannot hold take the exact table")
}

// TestRegistryLargeIndex: a registry of many rows (the index grows past
// its first guess, and shrinks when most lines are not rows) finds each
// device and no other, and reports duplicates anywhere in the file.
func TestRegistryLargeIndex(t *testing.T) {
	const n = 20000
	var sb strings.Builder
	sb.WriteString("nameplate_num,address,municipality,nominal_power\n")
	for i := range n {
		fmt.Fprintf(&sb, "D%05d,Rua %d,Uberaba,%d\n", (i*7919)%n, i%300, 50+i%5*25)
		if i%1000 == 999 {
			fmt.Fprintf(&sb, "D%05d,Outra,Uberaba,1\n", (i*7919)%n) // a duplicate: reported, the first row kept
		}
	}
	reg, rowErrs, err := ParseRegistry(strings.NewReader(sb.String()))
	require.NoError(t, err)
	require.Len(t, rowErrs, n/1000)
	for _, re := range rowErrs {
		assert.Contains(t, re.Reason, "duplicate nameplate_num")
	}
	require.Equal(t, n, reg.Len())
	for i := range n {
		info, ok := reg.Lookup(fmt.Sprintf("D%05d", (i*7919)%n))
		require.True(t, ok, i)
		assert.Equal(t, fmt.Sprintf("Rua %d", i%300), info.Site.Address)
		assert.Equal(t, "Uberaba", info.Site.Municipality)
		assert.Equal(t, float64(50+i%5*25), info.NominalPower)
	}
	for i := range 1000 {
		_, ok := reg.Lookup(fmt.Sprintf("X%05d", i))
		assert.False(t, ok)
	}
	assert.Equal(t, 300+1+1, len(reg.offs)-1-n, "repeated text is stored once: 300 streets, a municipality, and string 0")

	// Mostly blank lines: the index is sized from the line count, then
	// rebuilt for the rows there are.
	blank := "nameplate_num\n" + strings.Repeat("\n", 50000) + "A\nB\n"
	reg, _, err = ParseRegistry(strings.NewReader(blank))
	require.NoError(t, err)
	assert.Equal(t, []string{"A", "B"}, reg.Nameplates())
	assert.LessOrEqual(t, len(reg.index), 2*tableSize(2))
	_, ok := reg.Lookup("A")
	assert.True(t, ok)
}
