package store

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// The JKS format, as sun.security.provider.JavaKeyStore reads and writes it:
//
//	magic 0xFEEDFEED, version (2; 1 has no certificate types), entry count,
//	then per entry: tag (1 private key, 2 trusted certificate), alias
//	(DataOutput.writeUTF), creation time (ms since the epoch), and
//	  key:         length + EncryptedPrivateKeyInfo (KeyProtector), chain
//	               length, then per certificate: type (writeUTF), length, DER
//	  certificate: type (writeUTF), length, DER
//	and last SHA-1(password || "Mighty Aphrodite" || everything above).
//
// Java turns the password into bytes as its UTF-16 code units, big-endian
// (each char as two bytes, surrogate pairs as they are). keystore-go uses one
// zero byte and then each byte of the password, which agrees with Java only
// for ASCII; this codec does what Java does, for every password.

const (
	jksVersion1   = 1
	jksVersion2   = 2
	jksTagKey     = 1
	jksTagTrusted = 2
	jksSaltLen    = 20
	// jksCertType is what Java writes; the decoder accepts any type string
	// and parses the bytes as X.509.
	jksCertType = "X.509"
)

// keyProtectorOID is Sun's proprietary JKS key protection algorithm
// (sun.security.provider.KeyProtector).
var keyProtectorOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 42, 2, 17, 1, 1}

var jksWhitener = []byte("Mighty Aphrodite")

// javaPassword returns the bytes Java derives JKS keys from: the password's
// UTF-16 code units, big-endian. The password must be valid UTF-8 (what
// Cassandra reads from cassandra.yaml); Validate refuses anything else first.
func javaPassword(password []byte) ([]byte, error) {
	if !utf8.Valid(password) {
		return nil, errNotUTF8
	}
	units := utf16.Encode([]rune(string(password)))
	out := make([]byte, 2*len(units))
	for i, u := range units {
		binary.BigEndian.PutUint16(out[2*i:], u)
	}
	return out, nil
}

var errNotUTF8 = errors.New("the password is not valid UTF-8 text: Java (and cassandra.yaml) takes passwords as text")

// jksEntry is one entry to write: a key (PKCS#8 DER) with its chain, or a
// trusted certificate (key nil, one certificate).
type jksEntry struct {
	alias string
	key   []byte
	certs [][]byte
}

func encodeJKS(entries []jksEntry, password []byte, now time.Time) ([]byte, error) {
	pw, err := javaPassword(password)
	if err != nil {
		return nil, err
	}
	var b jksWriter
	b.u32(jksMagic)
	b.u32(jksVersion2)
	b.u32(uint32(len(entries)))
	millis := uint64(now.UnixMilli())
	for _, e := range entries {
		// Java lower-cases aliases (in the English locale) when it stores them.
		alias := strings.ToLower(e.alias)
		if e.key != nil {
			protected, err := protectKey(e.key, pw, rand.Reader)
			if err != nil {
				return nil, err
			}
			b.u32(jksTagKey)
			b.utf(alias)
			b.u64(millis)
			b.bytes32(protected)
			b.u32(uint32(len(e.certs)))
			for _, c := range e.certs {
				b.utf(jksCertType)
				b.bytes32(c)
			}
			continue
		}
		b.u32(jksTagTrusted)
		b.utf(alias)
		b.u64(millis)
		b.utf(jksCertType)
		b.bytes32(e.certs[0])
	}
	if b.err != nil {
		return nil, b.err
	}
	sum := jksDigest(pw, b.buf.Bytes())
	b.buf.Write(sum)
	return b.buf.Bytes(), nil
}

func jksDigest(pw, body []byte) []byte {
	h := sha1.New()
	h.Write(pw)
	h.Write(jksWhitener)
	h.Write(body)
	return h.Sum(nil)
}

// protectKey is KeyProtector.protect: a SHA-1 keystream seeded with the
// password and a random salt, XORed with the key, then SHA-1(password || key)
// as the integrity check; wrapped in an EncryptedPrivateKeyInfo.
func protectKey(plain, pw []byte, random io.Reader) ([]byte, error) {
	salt := make([]byte, jksSaltLen)
	if _, err := io.ReadFull(random, salt); err != nil {
		return nil, fmt.Errorf("random salt: %w", err)
	}
	out := make([]byte, 0, jksSaltLen+len(plain)+sha1.Size)
	out = append(out, salt...)
	out = append(out, xorKeystream(plain, pw, salt)...)
	check := sha1.Sum(append(append([]byte{}, pw...), plain...))
	out = append(out, check[:]...)
	return asn1.Marshal(encryptedPrivateKeyInfo{
		Algo:          pkix.AlgorithmIdentifier{Algorithm: keyProtectorOID, Parameters: asn1.NullRawValue},
		EncryptedData: out,
	})
}

// recoverKey is KeyProtector.recover.
func recoverKey(der, pw []byte) ([]byte, error) {
	var info encryptedPrivateKeyInfo
	rest, err := asn1.Unmarshal(der, &info)
	if err != nil || len(rest) > 0 {
		return nil, errors.New("the protected key is not a valid EncryptedPrivateKeyInfo")
	}
	if !info.Algo.Algorithm.Equal(keyProtectorOID) {
		return nil, fmt.Errorf("key protection algorithm %v is not JKS's (%v)", info.Algo.Algorithm, keyProtectorOID)
	}
	data := info.EncryptedData
	if len(data) < jksSaltLen+sha1.Size {
		return nil, errors.New("the protected key is too short")
	}
	salt, enc, check := data[:jksSaltLen], data[jksSaltLen:len(data)-sha1.Size], data[len(data)-sha1.Size:]
	plain := xorKeystream(enc, pw, salt)
	got := sha1.Sum(append(append([]byte{}, pw...), plain...))
	if subtle.ConstantTimeCompare(got[:], check) != 1 {
		return nil, errors.New("the key entry cannot be decrypted: wrong password")
	}
	return plain, nil
}

type encryptedPrivateKeyInfo struct {
	Algo          pkix.AlgorithmIdentifier
	EncryptedData []byte
}

func xorKeystream(in, pw, salt []byte) []byte {
	out := make([]byte, len(in))
	digest := salt
	for off := 0; off < len(in); off += sha1.Size {
		h := sha1.New()
		h.Write(pw)
		h.Write(digest)
		digest = h.Sum(nil)
		for i := 0; i < sha1.Size && off+i < len(in); i++ {
			out[off+i] = in[off+i] ^ digest[i]
		}
	}
	return out
}

// decodedJKSEntry is one entry read back: a key entry has key set.
type decodedJKSEntry struct {
	alias string
	key   []byte // PKCS#8 DER, decrypted
	certs [][]byte
}

// decodeJKSEntries checks the store's integrity with password and decrypts
// its key entries with the same password (as Cassandra does). Every length
// is checked against the data actually present, so a hostile file cannot
// make it allocate more than its own size.
func decodeJKSEntries(data, password []byte) ([]decodedJKSEntry, error) {
	pw, err := javaPassword(password)
	if err != nil {
		return nil, err
	}
	if len(data) < 12+sha1.Size {
		return nil, errors.New("JKS: the file is too short")
	}
	body, sum := data[:len(data)-sha1.Size], data[len(data)-sha1.Size:]
	if subtle.ConstantTimeCompare(jksDigest(pw, body), sum) != 1 {
		return nil, errors.New("JKS integrity check failed: wrong password or corrupt store")
	}
	r := &jksReader{data: body}
	if r.u32() != jksMagic {
		return nil, errors.New("JKS: bad magic")
	}
	version := r.u32()
	if version != jksVersion1 && version != jksVersion2 {
		return nil, fmt.Errorf("JKS: unsupported version %d", version)
	}
	n := r.u32()
	var entries []decodedJKSEntry
	for i := uint32(0); i < n && r.err == nil; i++ {
		tag := r.u32()
		e := decodedJKSEntry{alias: r.utf()}
		r.u64() // creation time
		switch tag {
		case jksTagKey:
			protected := r.bytes32()
			count := r.u32()
			for j := uint32(0); j < count && r.err == nil; j++ {
				e.certs = append(e.certs, r.cert(version))
			}
			if r.err != nil {
				break
			}
			if e.key, err = recoverKey(protected, pw); err != nil {
				return nil, fmt.Errorf("JKS entry %q: %w", e.alias, err)
			}
		case jksTagTrusted:
			e.certs = [][]byte{r.cert(version)}
		default:
			if r.err == nil {
				return nil, fmt.Errorf("JKS: entry %d has unknown tag %d", i+1, tag)
			}
		}
		entries = append(entries, e)
	}
	if r.err != nil {
		return nil, fmt.Errorf("JKS: %w", r.err)
	}
	if len(r.data) != 0 {
		return nil, fmt.Errorf("JKS: %d unexpected bytes after the entries", len(r.data))
	}
	return entries, nil
}

type jksWriter struct {
	buf bytes.Buffer
	err error
}

func (w *jksWriter) u32(v uint32) { w.buf.Write(binary.BigEndian.AppendUint32(nil, v)) }
func (w *jksWriter) u64(v uint64) { w.buf.Write(binary.BigEndian.AppendUint64(nil, v)) }
func (w *jksWriter) bytes32(b []byte) {
	w.u32(uint32(len(b)))
	w.buf.Write(b)
}

// utf is DataOutput.writeUTF: a 16-bit length, then modified UTF-8 (UTF-16
// code units, each encoded alone, and NUL as two bytes).
func (w *jksWriter) utf(s string) {
	var enc []byte
	for _, u := range utf16.Encode([]rune(s)) {
		switch {
		case u != 0 && u < 0x80:
			enc = append(enc, byte(u))
		case u < 0x800:
			enc = append(enc, 0xC0|byte(u>>6), 0x80|byte(u&0x3F))
		default:
			enc = append(enc, 0xE0|byte(u>>12), 0x80|byte(u>>6&0x3F), 0x80|byte(u&0x3F))
		}
	}
	if len(enc) > 0xFFFF {
		w.err = fmt.Errorf("alias %q is too long for JKS", s)
		return
	}
	w.buf.Write(binary.BigEndian.AppendUint16(nil, uint16(len(enc))))
	w.buf.Write(enc)
}

type jksReader struct {
	data []byte
	err  error
}

func (r *jksReader) take(n uint64) []byte {
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.data)) {
		r.err = errors.New("truncated store (a length points past the end)")
		return nil
	}
	b := r.data[:n]
	r.data = r.data[n:]
	return b
}

func (r *jksReader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *jksReader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *jksReader) bytes32() []byte { return r.take(uint64(r.u32())) }

// utf is DataInput.readUTF.
func (r *jksReader) utf() string {
	b := r.take(2)
	if b == nil {
		return ""
	}
	enc := r.take(uint64(binary.BigEndian.Uint16(b)))
	var units []uint16
	for i := 0; i < len(enc); {
		c := enc[i]
		switch {
		case c < 0x80:
			units = append(units, uint16(c))
			i++
		case c&0xE0 == 0xC0 && i+1 < len(enc):
			units = append(units, uint16(c&0x1F)<<6|uint16(enc[i+1]&0x3F))
			i += 2
		case c&0xF0 == 0xE0 && i+2 < len(enc):
			units = append(units, uint16(c&0x0F)<<12|uint16(enc[i+1]&0x3F)<<6|uint16(enc[i+2]&0x3F))
			i += 3
		default:
			if r.err == nil {
				r.err = errors.New("malformed alias")
			}
			return ""
		}
	}
	return string(utf16.Decode(units))
}

// cert reads one certificate; version 1 stores have no type string.
func (r *jksReader) cert(version uint32) []byte {
	if version == jksVersion2 {
		r.utf()
	}
	return r.bytes32()
}
