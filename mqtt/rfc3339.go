package mqtt

import "time"

// parseRFC3339 parses the strict RFC 3339 form, as the standard library's
// own fast path (time/format_rfc3339.go) does:
// "2006-01-02T15:04:05[.fraction](Z|±hh:mm)", upper-case T and Z, every
// field two digits (four for the year) and in range, the fraction
// truncated to nanoseconds. time.Parse is not used because it would make
// the payload's bytes escape (an allocation per message), and because its
// lenient fallback also takes forms RFC 3339 does not allow (a comma before
// the fraction, a one-digit hour, an offset of +24:00); a controller that
// sends those is misconfigured and is told so (bad_time). The fuzz test
// checks the agreement with the standard library on everything else.
func parseRFC3339(s []byte) (time.Time, bool) {
	if len(s) < len("2006-01-02T15:04:05") {
		return time.Time{}, false
	}
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits(s[0:4], 0, 9999)
	month, ok2 := digits(s[5:7], 1, 12)
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	day, ok3 := digits(s[8:10], 1, daysIn(month, year))
	hour, ok4 := digits(s[11:13], 0, 23)
	minute, ok5 := digits(s[14:16], 0, 59)
	sec, ok6 := digits(s[17:19], 0, 59)
	if !ok3 || !ok4 || !ok5 || !ok6 {
		return time.Time{}, false
	}
	s = s[19:]

	nsec := 0
	if len(s) >= 2 && s[0] == '.' && isDigit(s[1]) {
		n := 1
		for n < len(s) && isDigit(s[n]) {
			n++
		}
		// Nanoseconds: the first nine digits, the rest truncated.
		for i := 1; i <= 9; i++ {
			nsec *= 10
			if i < n {
				nsec += int(s[i] - '0')
			}
		}
		s = s[n:]
	}

	t := time.Date(year, time.Month(month), day, hour, minute, sec, nsec, time.UTC)
	if len(s) == 1 && s[0] == 'Z' {
		return t, true
	}
	if len(s) != len("-07:00") || (s[0] != '+' && s[0] != '-') || s[3] != ':' {
		return time.Time{}, false
	}
	oh, ok1 := digits(s[1:3], 0, 23)
	om, ok2 := digits(s[4:6], 0, 59)
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	offset := time.Duration(oh)*time.Hour + time.Duration(om)*time.Minute
	if s[0] == '+' {
		offset = -offset
	}
	return t.Add(offset), true
}

// digits parses a fixed-width decimal field and checks its range.
func digits(s []byte, lo, hi int) (int, bool) {
	x := 0
	for _, c := range s {
		if !isDigit(c) {
			return 0, false
		}
		x = x*10 + int(c-'0')
	}
	return x, lo <= x && x <= hi
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
