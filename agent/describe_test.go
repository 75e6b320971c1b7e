package agent

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func describeFixture() (Event, DeviceInfo) {
	ev := Event{
		Kind: Raise, Nameplate: "IP05", Fault: FaultLampFailure,
		Since:   time.Date(2026, 12, 5, 0, 10, 0, 0, time.UTC), // 21:10 BRT
		At:      time.Date(2026, 12, 5, 0, 20, 0, 0, time.UTC),
		Reading: Reading{Fields: FieldLampOn | FieldPower | FieldVoltage | FieldDim, LampOn: true, Power: 0, Voltage: 221.4, Dim: 100},
	}
	info := DeviceInfo{Nameplate: "IP05", Site: Site{
		Address: "Av. Leopoldino de Oliveira", AddressNumber: 3490, Neighborhood: "Centro",
		Municipality: "Uberaba", State: "MG", ReferencePoint: "em frente à praça",
	}, NominalPower: 100}
	return ev, info
}

func TestDescribeLampFailure(t *testing.T) {
	ev, info := describeFixture()
	d := NewDetector(testConfig(), nil, testNight)
	assert.Equal(t,
		"Lâmpada apagada durante a noite. Potência 0,0 W (mínimo 5 W), comando da lâmpada ligado, dimerização 100 %, "+
			"tensão 221,4 V. Observada desde 04/12/2026 21:10 (-03:00), confirmada em 3 leituras. "+
			"Ponto IP05, Av. Leopoldino de Oliveira, 3490, Centro, Uberaba/MG, referência: em frente à praça, Gateway gw-01.",
		d.Describe(ev, info, "gw-01", brt))
	assert.Equal(t,
		"Lâmpada apagada durante a noite. Potência 0,0 W, comando da lâmpada ligado, dimerização 100 %, "+
			"tensão 221,4 V. Observada desde 04/12/2026 21:10 (-03:00), confirmada em 04/12/2026 21:20 (-03:00). "+
			"Ponto IP05, Av. Leopoldino de Oliveira, 3490, Centro, Uberaba/MG, referência: em frente à praça, Gateway gw-01.",
		DescribeFault(ev, info, "gw-01", brt))
	assert.Contains(t, DescribeFault(ev, info, "gw-01", nil), "05/12/2026 00:10 (+00:00)", "nil location is UTC")
}

func TestDescribeEveryFault(t *testing.T) {
	d := NewDetector(testConfig(), nil, testNight)
	base, info := describeFixture()
	full := Reading{
		Fields: litFields | FieldLux | FieldSwitchCount,
		LampOn: true, Power: 135.26, Voltage: 247.8, PowerFactor: 0.62, Dim: 100, Current: 0.61, Lux: 2.5, SwitchCount: 5531,
	}
	wants := map[string][]string{
		FaultLampFailure:          {"Lâmpada apagada durante a noite.", "Potência 135,3 W (mínimo 5 W)"},
		FaultLampUnexpectedOn:     {"Lâmpada acesa durante o dia.", "luminosidade 2,5 lux"},
		FaultSupplyVoltageTooHigh: {"acima do limite", "Tensão 247,8 V (faixa 198,0 a 242,0 V)"},
		FaultSupplyVoltageTooLow:  {"abaixo do limite", "Tensão 247,8 V"},
		FaultPowerFactorTooLow:    {"Fator de potência baixo", "Fator de potência 0,62 (mínimo 0,85)"},
		FaultLampPowerTooHigh:     {"acima da nominal", "Potência 135,3 W (nominal 100 W, limite 120,0 W)", "corrente 0,61 A"},
		FaultCyclingFailure:       {"acendendo e apagando", "contador de acionamentos 5531", "limite 6 mudanças em 60 min"},
		"relayFailure":            {"Alarme informado pelo controlador: relayFailure.", "Informado em 04/12/2026 21:20 (-03:00)."},
	}
	decimalPoint := regexp.MustCompile(`\d\.\d`)
	for fault, want := range wants {
		ev := base
		ev.Fault, ev.Reading = fault, full
		s := d.Describe(ev, info, "gw-01", brt)
		for _, w := range want {
			assert.Contains(t, s, w, fault)
		}
		assert.False(t, decimalPoint.MatchString(strings.ReplaceAll(s, "Av.", "")), "decimal comma: %s", s)
		assert.True(t, strings.HasSuffix(s, "Gateway gw-01."), s)
	}
}

func TestDescribeCommunicationAndUnknownDevice(t *testing.T) {
	ev := Event{Kind: Raise, Nameplate: "X1", Fault: FaultCommunicationFailure,
		Since: time.Date(2026, 12, 5, 0, 10, 0, 0, time.UTC), At: time.Date(2026, 12, 5, 0, 25, 0, 0, time.UTC),
		Lat: -19.7472, Lon: -47.9381, HasPosition: true}
	s := DescribeFault(ev, DeviceInfo{Nameplate: "X1"}, "gw-01", brt)
	assert.Equal(t, "Controlador sem comunicação com o gateway. Última mensagem em 04/12/2026 21:10 (-03:00); "+
		"falha registrada em 04/12/2026 21:25 (-03:00). Ponto X1, coordenadas (-19,7472; -47,9381), Gateway gw-01.", s)
	ev.Since = time.Unix(0, 0)
	assert.Contains(t, DescribeFault(ev, DeviceInfo{}, "", brt), "Nenhuma mensagem recebida")
}

func TestCancelJustification(t *testing.T) {
	at := time.Date(2026, 12, 5, 9, 10, 0, 0, time.UTC)
	assert.Equal(t, "A falha normalizou em 05/12/2026 06:10 (-03:00) (lâmpada apagada à noite). Cancelamento automático pelo gateway.",
		CancelJustification(FaultLampFailure, at, brt))
	assert.Contains(t, CancelJustification(FaultCommunicationFailure, at, brt), "voltou a se comunicar")
	assert.Contains(t, CancelJustification("relayFailure", at, nil), "alarme relayFailure")
	assert.Contains(t, CancelJustification("relayFailure", at, nil), "05/12/2026 09:10 (+00:00)")
}

func TestFaultLabel(t *testing.T) {
	for _, f := range builtinFaults {
		pt, en := FaultLabel(f, "pt"), FaultLabel(f, "en")
		assert.NotEqual(t, f, pt)
		assert.NotEqual(t, f, en)
		assert.NotEqual(t, pt, en)
		assert.Equal(t, pt, FaultLabel(f, ""), "Portuguese by default")
	}
	assert.Equal(t, "Lamp out at night", FaultLabel(FaultLampFailure, "en"))
	assert.Equal(t, "relayFailure", FaultLabel("relayFailure", "pt"))
}
