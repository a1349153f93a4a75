package testconn

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Text renders the report for a terminal: a title, one aligned line per
// step (PASS, FAIL or SKIP, host, step, duration, detail) with the fix
// indented under a failed step, a blank line between hosts, and a verdict.
//
//	PASS  127.0.0.1  tls       3ms    TLS 1.3, certificate for ... verified (strict), valid until 2027-01-01
//	FAIL  127.0.0.1  bind      1ms    invalid credentials (49)
//	                                  fix: the bind DN does not exist or the password is wrong: ...
func (r *Report) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Test connection: connector %s\n", r.Connector)
	hostW, nameW, durW := 0, 0, 0
	durs := make([]string, len(r.Steps))
	for i, s := range r.Steps {
		hostW = max(hostW, utf8.RuneCountInString(s.Host))
		nameW = max(nameW, len(s.Name))
		if s.Skipped {
			durs[i] = "-"
		} else {
			durs[i] = fmtDuration(s.Duration)
		}
		durW = max(durW, utf8.RuneCountInString(durs[i]))
	}
	indent := strings.Repeat(" ", 4+2+hostW+2+nameW+2+durW+2)
	var passed, failed []string
	for i, s := range r.Steps {
		if i == 0 || s.Host != r.Steps[i-1].Host {
			b.WriteByte('\n')
			if hostPassed(r.Steps, s.Host) {
				passed = append(passed, s.Host)
			} else {
				failed = append(failed, s.Host)
			}
		}
		status := "FAIL"
		switch {
		case s.Skipped:
			status = "SKIP"
		case s.OK:
			status = "PASS"
		}
		line := fmt.Sprintf("%s  %s  %s  %s  %s", status, pad(s.Host, hostW), pad(s.Name, nameW), pad(durs[i], durW), oneLine(s.Detail))
		b.WriteString(strings.TrimRight(line, " "))
		b.WriteByte('\n')
		if s.Fix != "" && !s.OK {
			fmt.Fprintf(&b, "%sfix: %s\n", indent, oneLine(s.Fix))
		}
	}
	b.WriteByte('\n')
	switch {
	case r.OK && len(failed) > 0:
		fmt.Fprintf(&b, "OK: %s passed every step; %s failed: fix it, or there is no failover\n",
			strings.Join(passed, " and "), strings.Join(failed, " and "))
	case r.OK:
		fmt.Fprintf(&b, "OK: %s passed every step\n", strings.Join(passed, " and "))
	case len(r.Steps) == 0:
		b.WriteString("FAILED: nothing was tested\n")
	default:
		b.WriteString("FAILED: no host passed every step\n")
	}
	return b.String()
}

func hostPassed(steps []Step, host string) bool {
	n := 0
	for _, s := range steps {
		if s.Host == host {
			if !s.OK {
				return false
			}
			n++
		}
	}
	return n > 0
}

func pad(s string, w int) string {
	if n := utf8.RuneCountInString(s); n < w {
		return s + strings.Repeat(" ", w-n)
	}
	return s
}

// oneLine keeps a multi-line server message on its step's line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// fmtDuration shows tenths of a millisecond below one ("0.4ms"),
// milliseconds below ten seconds ("3ms", "1.234s"), tenths of a second
// above.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d.Round(100*time.Microsecond))/float64(time.Millisecond))
	case d < 10*time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
