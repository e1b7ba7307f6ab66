package pki

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
)

// Reason says why source material was refused. It is the reason label of
// cassandra_tls_agent_source_errors_total: a small fixed set, never text
// taken from the input.
type Reason string

const (
	ReasonMissing        Reason = "missing"         // a file is absent or empty
	ReasonUnreadable     Reason = "unreadable"      // permission denied, not a regular file, I/O error
	ReasonTooLarge       Reason = "too_large"       // larger than files.MaxSize
	ReasonMalformed      Reason = "malformed"       // not PEM, not a certificate or key, wrong block type
	ReasonUnsupportedKey Reason = "unsupported_key" // weak RSA, unsupported curve or key type, encrypted key
	ReasonKeyMismatch    Reason = "key_mismatch"    // tls.key is not the leaf's key
	ReasonChainOrder     Reason = "chain_order"     // tls.crt is not leaf first, then each issuer
	ReasonUntrusted      Reason = "untrusted"       // no trusted CA, or the leaf does not chain to one
	ReasonExpired        Reason = "expired"         // the leaf's notAfter has passed
	ReasonNotYetValid    Reason = "not_yet_valid"   // the leaf's notBefore is in the future
	ReasonPassword       Reason = "password"        // a store password could not be read
	ReasonAmbiguousCA    Reason = "ambiguous_ca"    // two CAs share a subject (rotation gates cannot tell them apart)
	ReasonOther          Reason = "other"
)

// Reasons is every Reason, for metrics that start each series at zero.
func Reasons() []Reason {
	return []Reason{ReasonMissing, ReasonUnreadable, ReasonTooLarge, ReasonMalformed, ReasonUnsupportedKey,
		ReasonKeyMismatch, ReasonChainOrder, ReasonUntrusted, ReasonExpired, ReasonNotYetValid,
		ReasonPassword, ReasonAmbiguousCA, ReasonOther}
}

// SourceError is a refusal of source material with its reason. Its message
// is the wrapped error's: the file and the cause, never a secret.
type SourceError struct {
	Reason Reason
	Err    error
}

func (e *SourceError) Error() string { return e.Err.Error() }
func (e *SourceError) Unwrap() error { return e.Err }

// ReasonOf returns the reason carried by err, or ReasonOther.
func ReasonOf(err error) Reason {
	var se *SourceError
	if errors.As(err, &se) {
		return se.Reason
	}
	return ReasonOther
}

// refuse builds a SourceError from a message.
func refuse(r Reason, format string, a ...any) error {
	return &SourceError{Reason: r, Err: fmt.Errorf(format, a...)}
}

// ReadFile reads a source file (see files.ReadNonEmpty) and classifies a
// failure by its cause.
func ReadFile(path string) ([]byte, error) {
	data, err := files.ReadNonEmpty(path)
	if err != nil {
		return nil, ReadError(err)
	}
	return data, nil
}

// ReadError classifies an error from package files; errors that already
// carry a reason keep it.
func ReadError(err error) error {
	if err == nil {
		return nil
	}
	var se *SourceError
	if errors.As(err, &se) {
		return err
	}
	r := ReasonUnreadable
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, files.ErrEmpty):
		r = ReasonMissing
	case errors.Is(err, files.ErrTooLarge):
		r = ReasonTooLarge
	}
	return &SourceError{Reason: r, Err: err}
}
