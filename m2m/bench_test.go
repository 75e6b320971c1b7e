package m2m

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/edge-agent/edge-agent/m2m/m2mtest"
)

func BenchmarkEncodeCreate(b *testing.B) {
	tk, d := docTicket(), docDefaults()
	tk.Description = "Lâmpada apagada durante a noite desde 21:10 (potência 0,0 W, tensão 221 V); gateway gw-01"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeCreate(tk, d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseCreateResponse(b *testing.B) {
	body := []byte(`{"id_demanda": 123456, "operacao": "cria", "data_recebido": 1711217789710, "status": "ok"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseCreateResponse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateTicket is a whole create over loopback HTTP against the
// simulator (which checks every field), Concurrency 4, no rate limit to
// speak of: the client's own cost per ticket.
func BenchmarkCreateTicket(b *testing.B) {
	sim := m2mtest.StartT(b, m2mtest.Options{KeepRequests: 100, KeepBodies: 100})
	c, err := New(Config{BaseURL: sim.URL(), InstanceID: "69", Rate: 1e9, Concurrency: 4})
	if err != nil {
		b.Fatal(err)
	}
	var seq atomic.Int64
	tk, d := docTicket(), docDefaults()
	b.ReportAllocs()
	b.SetParallelism(1) // GOMAXPROCS goroutines; the client allows 4 in flight
	b.RunParallel(func(pb *testing.PB) {
		t := *tk
		for pb.Next() {
			t.Protocol = seq.Add(1)
			body, _ := EncodeCreate(&t, d)
			if _, err := c.CreateTicket(context.Background(), body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkUpdateAttributes100 is one many-devices call of 100 devices.
func BenchmarkUpdateAttributes100(b *testing.B) {
	sim := m2mtest.StartT(b, m2mtest.Options{KeepRequests: 10})
	c, err := New(Config{BaseURL: sim.URL(), InstanceID: "69", Rate: 1e9})
	if err != nil {
		b.Fatal(err)
	}
	devs := devicesN(100)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.UpdateAttributes(context.Background(), devs); err != nil {
			b.Fatal(err)
		}
	}
}
