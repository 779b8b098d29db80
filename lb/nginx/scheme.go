package nginx

import (
	"fmt"
	"strings"

	"mtlsconform/contract"
)

// headerSet is a scheme as nginx renders it: the maps (http level) and
// the proxy_set_header arguments of the protected host.
type headerSet struct {
	maps string
	sets []string
}

// The dlb scheme's verify map, as the reference has always rendered it.
const dlbVerifyMap = `    # Optional mode: nginx reports an untrusted certificate as
    # "FAILED:<reason>"; the contract (C10) wants plain FAILED.
    map $ssl_client_verify $mtls_client_verify {
        "~^FAILED" FAILED;
        default    $ssl_client_verify;
    }
`

// factVariable is the nginx variable holding a fact in the scheme's
// rendering, or why nginx has none.
func factVariable(s contract.Scheme, f contract.Fact) (string, error) {
	switch f {
	case contract.FactSubject, contract.FactIssuer:
		d, v := s.Subject, "s"
		if f == contract.FactIssuer {
			d, v = s.Issuer, "i"
		}
		switch d.Rendering {
		case contract.RFC2253:
			return "$ssl_client_" + v + "_dn", nil
		case contract.LegacySlash:
			return "$ssl_client_" + v + "_dn_legacy", nil
		}
		return "", contract.Unsupported("nginx has no variable for a DN as %s (only RFC 2253 and the legacy slash form)", d.Rendering)
	case contract.FactSerial:
		if s.Serial.Form == contract.SerialHex {
			return "$ssl_client_serial", nil
		}
		return "", contract.Unsupported("nginx's $ssl_client_serial is hex without separators; it has no %s form", s.Serial.Form)
	}
	switch s.Cert.Encoding {
	case contract.URLPEM, contract.URLPEMRawPlus:
		// $ssl_client_escaped_cert encodes + = / as well, which a
		// percent-decoder reads the same.
		return "$ssl_client_escaped_cert", nil
	}
	return "", contract.Unsupported("nginx has no variable for the client certificate as %s: $ssl_client_raw_cert is PEM with line breaks, "+
		"$ssl_client_escaped_cert URL-encoded PEM, and nginx-light has no scripting to convert them", s.Cert.Encoding)
}

// quoted is v as an nginx string; what nginx strings cannot carry
// literally ($, quotes, backslashes, braces, semicolons) is refused.
func quoted(what, v string) (string, error) {
	if strings.ContainsAny(v, "$\"'\\{};\n") {
		return "", contract.Unsupported("the scheme's %s %q holds characters nginx's configuration cannot carry literally", what, v)
	}
	return `"` + v + `"`, nil
}

// schemeHeaders renders the scheme. With a verify header, the identity
// headers come whenever the caller presented a certificate (empty, so
// dropped, without one); without one, only for a verified certificate,
// since their presence is then the verdict.
func schemeHeaders(s contract.Scheme) (headerSet, error) {
	var hs headerSet
	if v := s.Verify; v != nil {
		if v.Success == "SUCCESS" && v.Failed == "FAILED" && v.None == "NONE" && !v.FailedPrefix {
			hs.maps += dlbVerifyMap
		} else {
			values := map[string]string{}
			for k, raw := range map[string]string{"success": v.Success, "failed": v.Failed, "none": v.None} {
				q, err := quoted("verify "+k+" value", raw)
				if err != nil {
					return hs, err
				}
				values[k] = q
			}
			failed := values["failed"]
			if v.FailedPrefix && v.Failed == "FAILED" {
				// nginx's own FAILED:<reason> starts with the value.
				failed = "$ssl_client_verify"
			}
			hs.maps += fmt.Sprintf(`    # The verification result in the scheme's words (%s).
    map $ssl_client_verify $mtls_client_verify {
        "~^FAILED" %s;
        SUCCESS    %s;
        default    %s;
    }
`, s.Name, failed, values["success"], values["none"])
		}
		hs.sets = append(hs.sets, v.Header+" $mtls_client_verify")
	}
	for i, h := range s.IdentityHeaders() {
		var value string
		var fields []string
		for _, ff := range h.Fields {
			variable, err := factVariable(s, ff.Fact)
			if err != nil {
				return hs, err
			}
			value = variable
			// An x-forwarded-client-cert element, its fields quoted as
			// Envoy writes them ($ssl_client_s_dn already escapes a quote
			// in a DN as \").
			fields = append(fields, ff.Field+`=\"`+variable+`\"`)
		}
		if h.XFCC() {
			value = `"` + strings.Join(fields, ";") + `"`
		}
		header := h.Header
		if s.Verify != nil && !h.XFCC() {
			hs.sets = append(hs.sets, header+" "+value)
			continue
		}
		// Present only for a verified certificate (no verify header), or
		// for any presented one (an element has text of its own, so it
		// is emptied explicitly without a certificate).
		name := fmt.Sprintf("$mtls_header_%d", i)
		when := "SUCCESS"
		if s.Verify != nil {
			when = `"~^(SUCCESS|FAILED)"`
		}
		hs.maps += fmt.Sprintf(`    # %s: only for %s.
    map $ssl_client_verify %s {
        %s %s;
        default "";
    }
`, header, map[bool]string{true: "a verified certificate", false: "a presented certificate"}[s.Verify == nil], name, when, value)
		hs.sets = append(hs.sets, header+" "+name)
	}
	for _, h := range s.Strip {
		hs.sets = append(hs.sets, h+` ""`)
	}
	return hs, nil
}
