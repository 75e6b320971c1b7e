package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/agent"
	bolt "go.etcd.io/bbolt"
)

// viaFloat32 is what the detector hands out for a measurement v: the
// float64 of the shortest decimal of float32(v).
func viaFloat32(v float64) float64 {
	x, err := strconv.ParseFloat(strconv.FormatFloat(float64(float32(v)), 'g', -1, 32), 64)
	if err != nil {
		panic(err)
	}
	return x
}

// realAttrs is a device's attributes as the detector makes them from
// lightsim's reports (its value ranges and decimals): every measurement,
// lux for a third of the fleet, through float32; one device in twenty
// offline with communicationFailure, one in fifty with a lamp failure and
// a controller alarm.
func realAttrs(rng *rand.Rand, i int) agent.DeviceAttributes {
	fields := agent.FieldVoltage | agent.FieldCurrent | agent.FieldPower | agent.FieldPowerFactor | agent.FieldEnergy |
		agent.FieldLampOn | agent.FieldDim | agent.FieldTemperature | agent.FieldBurnHours | agent.FieldSwitchCount
	r := agent.Reading{
		Voltage:     viaFloat32(math.Round((215+rng.Float64()*12)*10) / 10),
		Current:     viaFloat32(math.Round(rng.Float64()*700) / 1000),
		Power:       viaFloat32(math.Round(rng.Float64()*1500) / 10),
		PowerFactor: viaFloat32(math.Round((0.85+rng.Float64()*0.14)*100) / 100),
		Energy:      viaFloat32(math.Round(rng.Float64()*3e6) / 1000),
		LampOn:      rng.IntN(2) == 0,
		Dim:         float64(rng.IntN(2) * 50),
		Temperature: viaFloat32(math.Round((20+rng.Float64()*25)*10) / 10),
		BurnHours:   viaFloat32(math.Round((2000+rng.Float64()*18000)*1000) / 1000),
		SwitchCount: float64(rng.IntN(4000)),
	}
	if i%3 == 0 {
		fields |= agent.FieldLux
		r.Lux = viaFloat32(math.Round(rng.Float64()*800) / 10)
	}
	r.Fields = fields
	a := agent.DeviceAttributes{Nameplate: fmt.Sprintf("IP%05d", i), Reading: r, Online: rng.IntN(20) != 0,
		LastSeen: time.Unix(1796000000+rng.Int64N(3600), 0).UTC(), ActiveFaults: []string{}}
	if !a.Online {
		a.ActiveFaults = []string{agent.FaultCommunicationFailure}
	}
	if i%50 == 0 {
		a.ActiveFaults = append(a.ActiveFaults, agent.FaultLampFailure, "relayStuck")
	}
	return a
}

const (
	footprintDevices = 100_000
	footprintBatch   = 500 // agent.attrSaveBatch
	footprintChunk   = 100 // agent.attrChunk
)

// footprintFleet is every device's attributes in one round, in one fixed
// shuffled order: the detector collects devices shard by shard (by the
// hash of their nameplate), so each batch of 500 lands all over the key
// space, as here.
func footprintFleet(round uint64) []agent.DeviceAttributes {
	rng := rand.New(rand.NewPCG(17, round))
	fleet := make([]agent.DeviceAttributes, footprintDevices)
	for i := range fleet {
		fleet[i] = realAttrs(rng, i)
	}
	order := rand.New(rand.NewPCG(18, 19)).Perm(footprintDevices)
	out := make([]agent.DeviceAttributes, footprintDevices)
	for i, j := range order {
		out[i] = fleet[j]
	}
	return out
}

func footprintSave(b *testing.B, s *Store, fleet []agent.DeviceAttributes) {
	for i := 0; i < len(fleet); i += footprintBatch {
		if err := s.PutAttributes(context.Background(), fleet[i:min(i+footprintBatch, len(fleet))]); err != nil {
			b.Fatal(err)
		}
	}
}

// footprintSync is the pipeline's flush with an API that takes every
// device: read 100 dirty, mark them synced, until none is left.
func footprintSync(b *testing.B, s *Store) {
	for n := 0; ; n++ {
		recs, err := s.DirtyAttributes(footprintChunk)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) == 0 {
			if n != footprintDevices/footprintChunk {
				b.Fatalf("%d chunks synced, want %d", n, footprintDevices/footprintChunk)
			}
			return
		}
		if err := s.MarkAttributesSynced(context.Background(), recs); err != nil {
			b.Fatal(err)
		}
	}
}

func footprintFileBytes(b *testing.B, path string) float64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return float64(fi.Size())
}

// footprintOptions is the store under test with the daemon's default cap
// (EDGE_STORE_MAX_MB=256: bbolt then grows the file in steps of 8 MiB);
// fill 0 is the shipped packing.
func footprintOptions(path string, fill float64) Options {
	return Options{Path: path, MaxBytes: 256 << 20, attrFill: fill}
}

// footprintPages is what bbolt's pages take: up to its high-water mark
// (what the daemon may map and touch), and of that what is in use (not
// free); and how full the attribute bucket's leaf pages are.
func footprintPages(b *testing.B, s *Store) (high, inuse, leafFill float64) {
	err := s.db.View(func(tx *bolt.Tx) error {
		st := tx.Bucket(bktAttrs).Stats()
		leafFill = 100 * float64(st.LeafInuse) / float64(st.LeafAlloc)
		high = float64(tx.Size())
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	inuse = high - float64(s.db.Stats().FreePageN*s.db.Info().PageSize)
	return high, inuse, leafFill
}

// BenchmarkAttributesFootprint is what the attribute records of 100,000
// devices cost in the store file, and the time the pipeline's first
// attribute round takes to save them:
//
//	go test -run '^$' -bench '^BenchmarkAttributesFootprint$' -benchtime 1x -count 3 ./store/
//
// Each iteration: a fresh store; 100,000 devices' attributes saved in
// batches of 500 (the timed part: ns/op, and save-ms); then, untimed, all
// synced as the pipeline's flush does (chunks of 100), then a second round
// in which every device changed, saved and synced. Reported per device:
// the file after the first save (file-B/dev-saved), after its sync
// (-synced) and after the second round (-round2); after the second round,
// bbolt's pages up to its high-water mark (high-B/dev) and those in use
// (inuse-B/dev); and how full the attribute bucket's leaf pages are after
// the first save (leaf-fill-%). fill=0.95 packs the attribute buckets'
// pages fuller, beside the shipped packing (bbolt's default).
func BenchmarkAttributesFootprint(b *testing.B) {
	rounds := [2][]agent.DeviceAttributes{footprintFleet(1), footprintFleet(2)}
	for _, v := range []struct {
		name string
		fill float64
	}{{"shipped", 0}, {"fill=0.95", 0.95}} {
		b.Run(v.name, func(b *testing.B) {
			var saved, synced, round2, high, inuse, fill float64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				path := dbPath(b)
				s, err := Open(footprintOptions(path, v.fill))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				footprintSave(b, s, rounds[0])
				b.StopTimer()
				saved += footprintFileBytes(b, path)
				_, _, f := footprintPages(b, s)
				fill += f
				footprintSync(b, s)
				synced += footprintFileBytes(b, path)
				footprintSave(b, s, rounds[1])
				footprintSync(b, s)
				round2 += footprintFileBytes(b, path)
				h, u, _ := footprintPages(b, s)
				high += h
				inuse += u
				if rec, ok, err := s.Attributes(rounds[1][0].Nameplate); err != nil || !ok || rec.Attributes.Reading != rounds[1][0].Reading {
					b.Fatalf("a record after the second round: %+v %v %v", rec, ok, err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			n := float64(b.N)
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/n, "save-ms")
			b.ReportMetric(saved/n/footprintDevices, "file-B/dev-saved")
			b.ReportMetric(synced/n/footprintDevices, "file-B/dev-synced")
			b.ReportMetric(round2/n/footprintDevices, "file-B/dev-round2")
			b.ReportMetric(high/n/footprintDevices, "high-B/dev")
			b.ReportMetric(inuse/n/footprintDevices, "inuse-B/dev")
			b.ReportMetric(fill/n, "leaf-fill-%")
		})
	}
}
