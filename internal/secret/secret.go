// Package secret reads secret values from files the way Kubernetes mounts
// them, keeping them out of command lines and logs.
package secret

import (
	"bytes"
	"fmt"

	"github.com/cassandra-tls-agent/cassandra-tls-agent/internal/files"
)

// ReadFile returns the content of a secret file without one trailing
// newline ("\n" or "\r\n"): `echo pw > file` and `kubectl create secret
// --from-file` both leave one, and it is never part of the password.
// An empty value is an error, never a silent empty password.
func ReadFile(path string) ([]byte, error) {
	data, err := files.ReadNonEmpty(path)
	if err != nil {
		return nil, err
	}
	data = TrimNewline(data)
	if len(data) == 0 {
		return nil, fmt.Errorf("%s: secret is empty", path)
	}
	return data, nil
}

// TrimNewline removes one trailing "\n" or "\r\n".
func TrimNewline(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}
