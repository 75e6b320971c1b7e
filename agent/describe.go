package agent

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Words for people: the ticket description a city's crew reads (Brazilian
// Portuguese, decimal commas), the cancel justification, and short labels
// for the status page and the CLI.

var faultLabels = map[string][2]string{ // fault → {pt, en}
	FaultLampFailure:          {"Lâmpada apagada à noite", "Lamp out at night"},
	FaultLampUnexpectedOn:     {"Lâmpada acesa de dia", "Lamp on by day"},
	FaultSupplyVoltageTooHigh: {"Tensão de alimentação alta", "Supply voltage too high"},
	FaultSupplyVoltageTooLow:  {"Tensão de alimentação baixa", "Supply voltage too low"},
	FaultPowerFactorTooLow:    {"Fator de potência baixo", "Power factor too low"},
	FaultLampPowerTooHigh:     {"Potência acima da nominal", "Lamp power above nominal"},
	FaultCyclingFailure:       {"Lâmpada acendendo e apagando", "Lamp cycling on and off"},
	FaultCommunicationFailure: {"Sem comunicação", "No communication"},
}

// FaultLabel returns a fault's short name for people, in Portuguese (lang
// "pt", and any other value) or English ("en"). A controller alarm with a
// name of its own is returned as is.
func FaultLabel(fault, lang string) string {
	l, ok := faultLabels[fault]
	if !ok {
		return fault
	}
	if lang == "en" {
		return l[1]
	}
	return l[0]
}

// faultHeadline is the first sentence of a description.
var faultHeadline = map[string]string{
	FaultLampFailure:          "Lâmpada apagada durante a noite.",
	FaultLampUnexpectedOn:     "Lâmpada acesa durante o dia.",
	FaultSupplyVoltageTooHigh: "Tensão de alimentação acima do limite.",
	FaultSupplyVoltageTooLow:  "Tensão de alimentação abaixo do limite.",
	FaultPowerFactorTooLow:    "Fator de potência baixo com a lâmpada acesa.",
	FaultLampPowerTooHigh:     "Potência da lâmpada acima da nominal.",
	FaultCyclingFailure:       "Lâmpada acendendo e apagando repetidamente durante a noite.",
	FaultCommunicationFailure: "Controlador sem comunicação com o gateway.",
}

// DescribeFault writes a raise's ticket description in Brazilian
// Portuguese: what was seen, the measurements that showed it, since when,
// where and which gateway. loc is the local time zone (nil: UTC). It does
// not know the detector's thresholds; Detector.Describe adds them.
func DescribeFault(ev Event, info DeviceInfo, gatewayID string, loc *time.Location) string {
	return describe(ev, info, gatewayID, loc, nil)
}

// Describe is DescribeFault with this detector's thresholds in the text
// ("potência 0,0 W (mínimo 5 W)", "confirmada em 3 leituras").
func (d *Detector) Describe(ev Event, info DeviceInfo, gatewayID string, loc *time.Location) string {
	return describe(ev, info, gatewayID, loc, &d.cfg)
}

func describe(ev Event, info DeviceInfo, gatewayID string, loc *time.Location, cfg *DetectorConfig) string {
	var b strings.Builder
	if h, ok := faultHeadline[ev.Fault]; ok {
		b.WriteString(h)
	} else {
		fmt.Fprintf(&b, "Alarme informado pelo controlador: %s.", ev.Fault)
	}
	if m := measurements(ev, info, cfg); m != "" {
		b.WriteString(" ")
		b.WriteString(m)
		b.WriteString(".")
	}
	b.WriteString(" ")
	b.WriteString(whenSentence(ev, loc, cfg))
	b.WriteString(" ")
	b.WriteString(placeSentence(ev, info, gatewayID))
	return b.String()
}

// num formats v with prec decimals and a decimal comma.
func num(v float64, prec int) string {
	return strings.Replace(strconv.FormatFloat(v, 'f', prec, 64), ".", ",", 1)
}

// short formats a threshold without useless decimals: 5 → "5", 0.85 → "0,85".
func short(v float64) string {
	return strings.Replace(strconv.FormatFloat(v, 'f', -1, 64), ".", ",", 1)
}

func localTime(t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	return t.In(loc).Format("02/01/2006 15:04 (-07:00)")
}

// measurements lists the reading's values that matter for the fault, the
// fault's own measurement first.
func measurements(ev Event, info DeviceInfo, cfg *DetectorConfig) string {
	r := &ev.Reading
	if r.Fields == 0 {
		return ""
	}
	var parts []string
	add := func(s string) { parts = append(parts, s) }
	lampOn := func() {
		if r.Has(FieldLampOn) {
			if r.LampOn {
				add("comando da lâmpada ligado")
			} else {
				add("comando da lâmpada desligado")
			}
		}
	}
	power := func(note string) {
		if r.Has(FieldPower) {
			add("potência " + num(r.Power, 1) + " W" + note)
		}
	}
	voltage := func(note string) {
		if r.Has(FieldVoltage) {
			add("tensão " + num(r.Voltage, 1) + " V" + note)
		}
	}
	pf := func(note string) {
		if r.Has(FieldPowerFactor) {
			add("fator de potência " + num(r.PowerFactor, 2) + note)
		}
	}
	current := func() {
		if r.Has(FieldCurrent) {
			add("corrente " + num(r.Current, 2) + " A")
		}
	}
	dim := func() {
		if r.Has(FieldDim) {
			add("dimerização " + num(r.Dim, 0) + " %")
		}
	}
	lux := func() {
		if r.Has(FieldLux) {
			add("luminosidade " + num(r.Lux, 1) + " lux")
		}
	}
	band := ""
	if cfg != nil && cfg.NominalVoltage > 0 {
		band = " (faixa " + num(cfg.NominalVoltage*(1-cfg.VoltageTolerance), 1) + " a " +
			num(cfg.NominalVoltage*(1+cfg.VoltageTolerance), 1) + " V)"
	}
	switch ev.Fault {
	case FaultLampFailure:
		note := ""
		if cfg != nil {
			note = " (mínimo " + short(cfg.LampMinPower) + " W)"
		}
		power(note)
		lampOn()
		dim()
		lux()
		voltage("")
	case FaultLampUnexpectedOn:
		power("")
		lampOn()
		dim()
		lux()
		voltage("")
	case FaultSupplyVoltageTooHigh, FaultSupplyVoltageTooLow:
		voltage(band)
		current()
		power("")
	case FaultPowerFactorTooLow:
		note := ""
		if cfg != nil {
			note = " (mínimo " + short(cfg.MinPowerFactor) + ")"
		}
		pf(note)
		power("")
		dim()
		voltage("")
	case FaultLampPowerTooHigh:
		note := ""
		if info.NominalPower > 0 {
			note = " (nominal " + short(info.NominalPower) + " W, limite " + num(overPowerFactor*info.NominalPower, 1) + " W)"
		}
		power(note)
		current()
		dim()
		voltage("")
	case FaultCyclingFailure:
		lampOn()
		if r.Has(FieldSwitchCount) {
			add("contador de acionamentos " + num(r.SwitchCount, 0))
		}
		if cfg != nil {
			add("limite " + strconv.Itoa(cfg.CyclingSwitches) + " mudanças em " + minutes(cfg.CyclingWindow))
		}
		power("")
		voltage("")
	default:
		lampOn()
		power("")
		voltage("")
	}
	if len(parts) == 0 {
		return ""
	}
	s := strings.Join(parts, ", ")
	return strings.ToUpper(s[:1]) + s[1:]
}

func minutes(d time.Duration) string {
	return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
}

func whenSentence(ev Event, loc *time.Location, cfg *DetectorConfig) string {
	switch {
	case ev.Fault == FaultCommunicationFailure:
		if ev.Since.IsZero() || ev.Since.Unix() <= 0 {
			return "Nenhuma mensagem recebida; falha registrada em " + localTime(ev.At, loc) + "."
		}
		return "Última mensagem em " + localTime(ev.Since, loc) + "; falha registrada em " + localTime(ev.At, loc) + "."
	case builtinIndex(ev.Fault) < 0:
		return "Informado em " + localTime(ev.At, loc) + "."
	}
	s := "Observada desde " + localTime(ev.Since, loc)
	switch {
	case cfg != nil && cfg.ConfirmCount > 1:
		s += ", confirmada em " + strconv.Itoa(min(cfg.ConfirmCount, 255)) + " leituras"
	case !ev.At.Equal(ev.Since):
		s += ", confirmada em " + localTime(ev.At, loc)
	}
	return s + "."
}

func placeSentence(ev Event, info DeviceInfo, gatewayID string) string {
	parts := []string{"Ponto " + ev.Nameplate}
	st := info.Site
	if st.Address != "" {
		a := st.Address
		if st.AddressNumber > 0 {
			a += ", " + strconv.Itoa(st.AddressNumber)
		}
		parts = append(parts, a)
	}
	if st.Neighborhood != "" {
		parts = append(parts, st.Neighborhood)
	}
	switch {
	case st.Municipality != "" && st.State != "":
		parts = append(parts, st.Municipality+"/"+st.State)
	case st.Municipality != "":
		parts = append(parts, st.Municipality)
	}
	if st.ReferencePoint != "" {
		parts = append(parts, "referência: "+st.ReferencePoint)
	}
	lat, lon, has := info.Latitude, info.Longitude, info.HasPosition
	if !has && ev.HasPosition {
		lat, lon, has = ev.Lat, ev.Lon, true
	}
	if has && st.Address == "" {
		parts = append(parts, "coordenadas ("+short(lat)+"; "+short(lon)+")")
	}
	if gatewayID != "" {
		parts = append(parts, "Gateway "+gatewayID)
	}
	return strings.Join(parts, ", ") + "."
}

// CancelJustification is the pt-BR justification of a cancel sent because
// the fault cleared: "A falha normalizou em ...".
func CancelJustification(fault string, clearedAt time.Time, loc *time.Location) string {
	what := ""
	switch {
	case fault == FaultCommunicationFailure:
		what = "o controlador voltou a se comunicar"
	case builtinIndex(fault) >= 0:
		what = strings.ToLower(FaultLabel(fault, "pt"))
	default:
		what = "o controlador deixou de informar o alarme " + fault
	}
	return "A falha normalizou em " + localTime(clearedAt, loc) + " (" + what + "). Cancelamento automático pelo gateway."
}
