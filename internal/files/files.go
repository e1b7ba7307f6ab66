// Package files reads the files the agent is given — certificates, keys,
// trust bundles, secrets, templates, its own outputs — the careful way: only
// regular files, never more than a bound, and never blocking on a FIFO or a
// device that an operator (or an attacker) put where a file was expected.
package files

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// MaxSize bounds every read. A trust bundle of a few thousand CAs is a few
// MiB; anything far larger is a mistake or an attack.
const MaxSize = 16 << 20

// Sentinel causes, for errors.Is. The errors returned wrap one of them (or
// the operating system's error) together with the path.
var (
	// ErrMissing: the file does not exist. errors.Is(err, fs.ErrNotExist) holds too.
	ErrMissing = fmt.Errorf("file does not exist: %w", fs.ErrNotExist)
	// ErrEmpty: the file holds nothing but white space.
	ErrEmpty = errors.New("file is empty")
	// ErrTooLarge: the file is larger than MaxSize.
	ErrTooLarge = fmt.Errorf("file is larger than the %d-byte limit", MaxSize)
	// ErrNotRegular: a directory, FIFO, socket or device where a file was expected.
	ErrNotRegular = errors.New("not a regular file")
)

// Read returns the content of the regular file at path (symbolic links are
// followed, as the kubelet's ..data layout needs). Errors name the file and
// say what is wrong in words an operator can act on.
func Read(path string) ([]byte, error) {
	// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
	// writer forever; the mode check below then refuses it.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: %w", path, ErrMissing)
		}
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	switch {
	case st.IsDir():
		return nil, fmt.Errorf("%s: is a directory, expected a file: %w", path, ErrNotRegular)
	case !st.Mode().IsRegular():
		return nil, fmt.Errorf("%s: is a %s, expected a regular file: %w", path, kind(st.Mode()), ErrNotRegular)
	case st.Size() > MaxSize:
		return nil, fmt.Errorf("%s: file is %d bytes: %w", path, st.Size(), ErrTooLarge)
	}
	// The size check above can race with a writer; the limited read cannot.
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPath(err))
	}
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%s: %w", path, ErrTooLarge)
	}
	return data, nil
}

// ReadNonEmpty is Read, refusing a file that holds only white space.
func ReadNonEmpty(path string) ([]byte, error) {
	data, err := Read(path)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%s: %w", path, ErrEmpty)
	}
	return data, nil
}

// unwrapPath drops the *fs.PathError wrapper, whose message would repeat
// the path we already print first.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}
