package selfsigned

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// attribute types by their OpenSSL short (and long) names.
var attributes = map[string]asn1.ObjectIdentifier{
	"c":                      {2, 5, 4, 6},
	"countryname":            {2, 5, 4, 6},
	"st":                     {2, 5, 4, 8},
	"stateorprovincename":    {2, 5, 4, 8},
	"l":                      {2, 5, 4, 7},
	"localityname":           {2, 5, 4, 7},
	"street":                 {2, 5, 4, 9},
	"streetaddress":          {2, 5, 4, 9},
	"o":                      {2, 5, 4, 10},
	"organizationname":       {2, 5, 4, 10},
	"ou":                     {2, 5, 4, 11},
	"organizationalunitname": {2, 5, 4, 11},
	"cn":                     {2, 5, 4, 3},
	"commonname":             {2, 5, 4, 3},
	"serialnumber":           {2, 5, 4, 5},
	"postalcode":             {2, 5, 4, 17},
	"title":                  {2, 5, 4, 12},
	"emailaddress":           {1, 2, 840, 113549, 1, 9, 1},
	"dc":                     {0, 9, 2342, 19200300, 100, 1, 25},
	"domaincomponent":        {0, 9, 2342, 19200300, 100, 1, 25},
	"uid":                    {0, 9, 2342, 19200300, 100, 1, 1},
	"userid":                 {0, 9, 2342, 19200300, 100, 1, 1},
}

var (
	oidCountry = asn1.ObjectIdentifier{2, 5, 4, 6}
	oidEmail   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}
	oidDC      = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}
)

// ParseSubject reads a distinguished name in the form openssl's -subj takes:
// "/CN=my-app/OU=Platform/O=Example Corp/C=DE". Attributes keep the order
// given (the first is the outermost, as openssl writes them); "+" joins
// attributes into one multi-valued RDN ("/CN=a+UID=b"); a backslash escapes
// "/", "+", "=" or itself. Names are OpenSSL's short or long names, case
// insensitive, or a dotted OID.
func ParseSubject(s string) (pkix.RDNSequence, error) {
	if strings.TrimSpace(s) == "" {
		return nil, errors.New("subject is empty")
	}
	if !strings.HasPrefix(s, "/") {
		return nil, fmt.Errorf("subject %q: want the form /CN=name/O=org (it must start with /)", s)
	}
	var (
		seq     pkix.RDNSequence
		set     pkix.RelativeDistinguishedNameSET
		cur     strings.Builder
		fields  []string // the current RDN's attributes, unescaped halves joined by \x00
		escaped bool
	)
	// The parser splits on unescaped "/" (RDN) and "+" (attribute), and
	// marks the first unescaped "=" of an attribute with \x00 so a value may
	// contain an escaped "=".
	flushAttr := func() {
		fields = append(fields, cur.String())
		cur.Reset()
	}
	flushRDN := func() error {
		flushAttr()
		for _, f := range fields {
			atv, err := attribute(f)
			if err != nil {
				return fmt.Errorf("subject %q: %w", s, err)
			}
			set = append(set, atv)
		}
		seq = append(seq, set)
		set, fields = nil, nil
		return nil
	}
	for _, r := range s[1:] {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == '/':
			if err := flushRDN(); err != nil {
				return nil, err
			}
		case r == '+':
			flushAttr()
		case r == '=' && !strings.ContainsRune(cur.String(), 0):
			cur.WriteRune(0)
		case r == 0:
			return nil, fmt.Errorf("subject %q contains a NUL character", s)
		default:
			cur.WriteRune(r)
		}
	}
	if escaped {
		return nil, fmt.Errorf("subject %q ends with a lone backslash", s)
	}
	if err := flushRDN(); err != nil {
		return nil, err
	}
	return seq, nil
}

func attribute(f string) (pkix.AttributeTypeAndValue, error) {
	name, value, ok := strings.Cut(f, "\x00")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		if f == "" {
			return pkix.AttributeTypeAndValue{}, errors.New("empty attribute (two slashes in a row, or a trailing slash?)")
		}
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("attribute %q has no = between name and value", strings.ReplaceAll(f, "\x00", "="))
	}
	oid, err := attributeType(name)
	if err != nil {
		return pkix.AttributeTypeAndValue{}, err
	}
	return attributeValue(name, oid, value)
}

func attributeType(name string) (asn1.ObjectIdentifier, error) {
	if oid, ok := attributes[strings.ToLower(name)]; ok {
		return oid, nil
	}
	if strings.Contains(name, ".") {
		var oid asn1.ObjectIdentifier
		for _, p := range strings.Split(name, ".") {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("attribute name %q is neither a known name nor a dotted OID", name)
			}
			oid = append(oid, n)
		}
		if len(oid) < 2 {
			return nil, fmt.Errorf("attribute name %q is not a valid OID", name)
		}
		return oid, nil
	}
	return nil, fmt.Errorf("unknown attribute name %q (use CN, OU, O, L, ST, C, street, postalCode, serialNumber, title, emailAddress, DC, UID or a dotted OID)", name)
}

// attributeValue checks and types a value the way X.520 and RFC 5280 want
// it: countryName is two letters (PrintableString), emailAddress and DC are
// IA5 (ASCII), everything else a PrintableString or UTF8String (asn1 picks).
func attributeValue(name string, oid asn1.ObjectIdentifier, value string) (pkix.AttributeTypeAndValue, error) {
	if value == "" {
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("attribute %s has an empty value", name)
	}
	if len(value) > 256 {
		return pkix.AttributeTypeAndValue{}, fmt.Errorf("attribute %s is longer than 256 bytes", name)
	}
	atv := pkix.AttributeTypeAndValue{Type: oid, Value: value}
	switch {
	case oid.Equal(oidCountry):
		if len(value) != 2 || !isUpperLetters(strings.ToUpper(value)) {
			return atv, fmt.Errorf("country %q: want a two-letter ISO 3166 code such as DE or US", value)
		}
		atv.Value = asn1.RawValue{Tag: asn1.TagPrintableString, Bytes: []byte(strings.ToUpper(value))}
	case oid.Equal(oidEmail), oid.Equal(oidDC):
		for _, r := range value {
			if r > 0x7f {
				return atv, fmt.Errorf("attribute %s must be ASCII", name)
			}
		}
		atv.Value = asn1.RawValue{Tag: asn1.TagIA5String, Bytes: []byte(value)}
	}
	return atv, nil
}

func isUpperLetters(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// Fields is a subject given attribute by attribute (the separate flags).
type Fields struct {
	CommonName, OrganizationalUnit, Organization, Locality, State, Country string
}

// Empty reports whether no field is set.
func (f Fields) Empty() bool { return f == Fields{} }

// Subject builds the RDN sequence in the conventional order C, ST, L, O,
// OU, CN (printed by openssl as /C=…/ST=…/…/CN=…).
func (f Fields) Subject() (pkix.RDNSequence, error) {
	var seq pkix.RDNSequence
	for _, a := range []struct{ name, value string }{
		{"C", f.Country}, {"ST", f.State}, {"L", f.Locality},
		{"O", f.Organization}, {"OU", f.OrganizationalUnit}, {"CN", f.CommonName},
	} {
		if a.value == "" {
			continue
		}
		atv, err := attributeValue(a.name, attributes[strings.ToLower(a.name)], a.value)
		if err != nil {
			return nil, err
		}
		seq = append(seq, pkix.RelativeDistinguishedNameSET{atv})
	}
	if len(seq) == 0 {
		return nil, errors.New("a subject is required")
	}
	return seq, nil
}

// OpenSSLString formats a subject the way openssl -subj takes it.
func OpenSSLString(seq pkix.RDNSequence) string {
	short := map[string]string{}
	for n, oid := range attributes {
		// Prefer the short names (shorter key) for display.
		if cur, ok := short[oid.String()]; !ok || len(n) < len(cur) {
			short[oid.String()] = n
		}
	}
	display := map[string]string{"c": "C", "st": "ST", "l": "L", "o": "O", "ou": "OU", "cn": "CN", "dc": "DC", "uid": "UID",
		"street": "street", "title": "title", "serialnumber": "serialNumber", "postalcode": "postalCode", "emailaddress": "emailAddress"}
	esc := strings.NewReplacer(`\`, `\\`, `/`, `\/`, `+`, `\+`)
	var b strings.Builder
	for _, rdn := range seq {
		b.WriteByte('/')
		for i, atv := range rdn {
			if i > 0 {
				b.WriteByte('+')
			}
			name := atv.Type.String()
			if n, ok := short[name]; ok {
				if d, ok := display[n]; ok {
					name = d
				}
			}
			var v string
			switch x := atv.Value.(type) {
			case string:
				v = x
			case asn1.RawValue:
				v = string(x.Bytes)
			default:
				v = fmt.Sprint(x)
			}
			b.WriteString(name + "=" + esc.Replace(v))
		}
	}
	return b.String()
}

// SubjectOf is c's subject in openssl -subj form, in the order it is
// encoded (pkix.Name would reorder it).
func SubjectOf(c *x509.Certificate) string {
	var seq pkix.RDNSequence
	if rest, err := asn1.Unmarshal(c.RawSubject, &seq); err != nil || len(rest) > 0 {
		return c.Subject.String()
	}
	return OpenSSLString(seq)
}
